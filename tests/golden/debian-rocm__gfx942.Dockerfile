# Rendered by rocstack 0.1.0 from stack 'debian-rocm' for gfx942.
# Do not edit: re-render with `rocstack render --stack debian-rocm --arch gfx942`.

FROM rocstack-base/debian-rocm:sid-8e07ea84645b AS base
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
COPY rocstack/images/files/rocstack-pip.sh /usr/local/bin/rocstack-pip
COPY rocstack/images/files/rocstack-jobs.sh /usr/local/bin/rocstack-jobs
RUN python3 -m venv --system-site-packages /opt/venv

FROM base AS python-env
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-torch=2.14.1+dfsg-1 \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    --mount=type=bind,source=rocstack-package/pyproject.toml,target=/tmp/rocstack-pyproject.toml \
    python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/tmp/rocstack-pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/rocstack-requirements.txt \
    && rocstack-pip install -r /tmp/rocstack-requirements.txt \
    && rm /tmp/rocstack-requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    --mount=type=bind,source=rocstack-package,target=/tmp/rocstack-package,rw \
    rocstack-pip install --no-deps /tmp/rocstack-package

FROM python-env AS build-rocstack-hip
ENV ROCSTACK_ARCHES="gfx942" \
    WHEEL_DIR="/out/wheels" \
    ROCSTACK_CMAKE_ARGS="-DGPU_TARGETS=gfx942" \
    ROCSTACK_OFFLOAD_COMPRESS="ON"
COPY sources/rocstack-hip /src/rocstack-hip
WORKDIR /src/rocstack-hip
ENV CCACHE_DIR=/root/.cache/ccache \
    CCACHE_COMPILERCHECK=content
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    --mount=type=cache,target=/root/.cache/ccache,sharing=locked \
    --mount=type=cache,target=/root/.triton/cache,sharing=locked \
    set -x \
    && mkdir -p /out/wheels \
    && MAX_JOBS="$(rocstack-jobs rocstack-hip 1 0)" \
    && export MAX_JOBS \
    && cmake -S hip -B /tmp/build-rocstack-hip -G Ninja $ROCSTACK_CMAKE_ARGS -DROCSTACK_OFFLOAD_COMPRESS="${ROCSTACK_OFFLOAD_COMPRESS:-OFF}" -DCMAKE_HIP_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_INSTALL_PREFIX=/out/rocstack-hip \
    && cmake --build /tmp/build-rocstack-hip -j "$MAX_JOBS" \
    && { /tmp/build-rocstack-hip/rocstack_hip_test || [ $? -eq 77 ]; } \
    && cmake --install /tmp/build-rocstack-hip \
    && python -m rocstack.imaging.ledger --component rocstack-hip --targets "$ROCSTACK_ARCHES" --marker /out/rocstack-build/rocstack-hip.json /out/rocstack-hip
FROM python-env AS build-ck-fmha
ENV ROCSTACK_ARCHES="gfx942" \
    WHEEL_DIR="/out/wheels" \
    ROCSTACK_CMAKE_ARGS="-DGPU_TARGETS=gfx942" \
    ROCSTACK_TOOLCHAIN_FLAGS="" \
    ROCSTACK_OFFLOAD_COMPRESS="ON" \
    FMHA_API="fwd" \
    FMHA_RECEIPT="2" \
    FMHA_OPTDIM="128" \
    FMHA_FILTER="fmha_fwd_d128_*_batch_*_ps*ddv_nlogits_nbias_nmask_nlse_ndropout_nskip_nsquant"
COPY sources/ck-fmha /src/ck-fmha
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    python -m rocstack.imaging.inputs pypi flash_attn 2.8.3.post2 sdist d0f9f0b08a986cdeadbffcf5ec8b3a8f514366c68ad1853d3ab061bc83cc340b /inputs/flash_attn
WORKDIR /src/ck-fmha
ENV CCACHE_DIR=/root/.cache/ccache \
    CCACHE_COMPILERCHECK=content
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    --mount=type=cache,target=/root/.cache/ccache,sharing=locked \
    --mount=type=cache,target=/root/.triton/cache,sharing=locked \
    set -x \
    && mkdir -p /out/wheels \
    && MAX_JOBS="$(rocstack-jobs ck-fmha 1.5 0)" \
    && export MAX_JOBS \
    && mkdir -p /tmp/flash_attn && tar -xzf /inputs/flash_attn/flash_attn-2.8.3.post2.tar.gz -C /tmp/flash_attn \
    && cmake -S ck_fmha -B /tmp/build-ck-fmha -G Ninja $ROCSTACK_CMAKE_ARGS -DFLASH_ATTN_SRC=/tmp/flash_attn/flash_attn-2.8.3.post2 -DFMHA_API="$FMHA_API" -DFMHA_RECEIPT="$FMHA_RECEIPT" -DFMHA_OPTDIM="$FMHA_OPTDIM" -DFMHA_FILTER="$FMHA_FILTER" -DFMHA_EXTRA_FLAGS="$ROCSTACK_TOOLCHAIN_FLAGS" -DROCSTACK_OFFLOAD_COMPRESS="${ROCSTACK_OFFLOAD_COMPRESS:-OFF}" -DCMAKE_HIP_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_INSTALL_PREFIX=/out/ck-fmha \
    && cmake --build /tmp/build-ck-fmha -j "$MAX_JOBS" \
    && { /tmp/build-ck-fmha/rocstack_ck_fmha_test || [ $? -eq 77 ]; } \
    && cmake --install /tmp/build-ck-fmha \
    && python -m rocstack.imaging.ledger --component ck-fmha --targets "$ROCSTACK_ARCHES" --marker /out/rocstack-build/ck-fmha.json /out/ck-fmha

FROM python-env AS runtime
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    --mount=type=bind,source=rocstack/validation,target=/tmp/rocstack-validation,rw \
    rocstack-pip install /tmp/rocstack-validation
COPY --from=build-rocstack-hip /out/rocstack-hip /opt/rocstack/hip
COPY --from=build-ck-fmha /out/ck-fmha /opt/rocstack/ck-fmha
COPY rocstack /opt/rocstack/src
COPY --from=build-rocstack-hip /out/rocstack-build/ /opt/rocstack/build/
COPY --from=build-ck-fmha /out/rocstack-build/ /opt/rocstack/build/
RUN mkdir -p /opt/rocstack && printf '%s\n' 'rocstack 0.1.0' 'stack debian-rocm' 'arches gfx942' 'torch 2.14.1 (cpu)' 'rocstack-hip 0.1.0 local:kernels@0.1.0' 'ck-fmha 2.8.3.post2 local:kernels@2.8.3.post2' > /opt/rocstack/versions.txt
LABEL io.rocstack.arches="gfx942" \
      io.rocstack.components="{\"ck-fmha\":\"local:kernels@2.8.3.post2\",\"rocstack-hip\":\"local:kernels@0.1.0\"}" \
      io.rocstack.stack="debian-rocm" \
      org.opencontainers.image.description="Debian sid base built locally with Debian's ROCm 7.2 toolchain (hipcc 7.2.4, LLVM 22); CPU torch" \
      org.opencontainers.image.title="rocstack debian-rocm" \
      org.opencontainers.image.vendor="rocstack" \
      org.opencontainers.image.version="0.1.0"
