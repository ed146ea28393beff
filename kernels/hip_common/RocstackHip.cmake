# What rocstack's C-ABI HIP libraries (kernels/hip, kernels/ck_fmha) share: the mandatory arch
# list, the build defaults, and the library + test-program + install wiring.

# GPU_TARGETS (the spelling ROCm's CMake projects use) -> CMAKE_HIP_ARCHITECTURES. Call before
# project(): the HIP language reads it when enabled. There is no default on purpose - CMake's own
# asks the build machine's GPU, which in a container build means none or the wrong one
# (vllm#22590). ALLOWED: a regex the processor of every arch must match ("" for any).
macro(rocstack_gpu_targets ALLOWED WHY)
  set(GPU_TARGETS "" CACHE STRING "arches to build device code for, ';'-separated (gfx942;gfx950 or target IDs)")
  if(GPU_TARGETS)
    set(CMAKE_HIP_ARCHITECTURES "${GPU_TARGETS}" CACHE STRING "" FORCE)
  elseif(NOT CMAKE_HIP_ARCHITECTURES)
    message(FATAL_ERROR "no GPU arch given - pass -DGPU_TARGETS=\"gfx942;gfx950\" (or CMAKE_HIP_ARCHITECTURES)")
  endif()
  if(NOT "${ALLOWED}" STREQUAL "")
    foreach(_arch IN LISTS CMAKE_HIP_ARCHITECTURES)
      string(REGEX REPLACE ":.*" "" _processor "${_arch}")
      if(NOT _processor MATCHES "${ALLOWED}")
        message(FATAL_ERROR "${WHY}, not ${_arch} - drop it from GPU_TARGETS")
      endif()
    endforeach()
  endif()
endmacro()

# After project(): Release by default, C++17 for both languages, the compression switch, HIP.
macro(rocstack_hip_defaults)
  if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
    set(CMAKE_BUILD_TYPE Release CACHE STRING "build type (default Release: -O3)" FORCE)
  endif()
  set(CMAKE_CXX_STANDARD 17)
  set(CMAKE_CXX_STANDARD_REQUIRED ON)
  set(CMAKE_HIP_STANDARD 17)
  set(CMAKE_HIP_STANDARD_REQUIRED ON)
  option(ROCSTACK_OFFLOAD_COMPRESS "compress the device code bundles (clang --offload-compress)" OFF)
  find_package(hip REQUIRED CONFIG)
  include(GNUInstallDirs)
  enable_testing()
endmacro()

# A shared library LIB exporting only the symbols of EXPORTS (a version script), reporting its
# arch list through the compile definition TARGETS_DEFINE (comma-separated), with the test program
# TEST_TARGET built from TEST_SOURCE (ctest: exit 77 is "skipped") and everything installed.
function(rocstack_hip_library LIB)
  cmake_parse_arguments(ARG "" "TARGETS_DEFINE;EXPORTS;HEADER;TEST_TARGET;TEST_SOURCE" "" ${ARGN})
  list(JOIN CMAKE_HIP_ARCHITECTURES "," _targets)
  target_compile_definitions(${LIB} PRIVATE "${ARG_TARGETS_DEFINE}=\"${_targets}\"")
  if(ROCSTACK_OFFLOAD_COMPRESS)
    target_compile_options(${LIB} PRIVATE $<$<COMPILE_LANGUAGE:HIP>:--offload-compress>)
  endif()
  target_link_libraries(${LIB} PRIVATE hip::host)
  target_link_options(${LIB} PRIVATE "LINKER:--version-script=${ARG_EXPORTS}")
  set_target_properties(${LIB} PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION 0)

  add_executable(${ARG_TEST_TARGET} ${ARG_TEST_SOURCE})
  target_include_directories(${ARG_TEST_TARGET} PRIVATE "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
  target_link_libraries(${ARG_TEST_TARGET} PRIVATE ${LIB} hip::host)
  set_target_properties(${ARG_TEST_TARGET} PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
  add_test(NAME ${ARG_TEST_TARGET} COMMAND ${ARG_TEST_TARGET})
  set_tests_properties(${ARG_TEST_TARGET} PROPERTIES SKIP_RETURN_CODE 77)

  install(TARGETS ${LIB} ${ARG_TEST_TARGET}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(FILES ${ARG_HEADER} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()
