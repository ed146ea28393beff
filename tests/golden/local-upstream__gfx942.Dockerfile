# Rendered by rocstack 0.1.0 from stack 'local-upstream' for gfx942.
# Do not edit: re-render with `rocstack render --stack local-upstream --arch gfx942`.

FROM rocstack-base/local-upstream:bookworm-f64e927caea2 AS base
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
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    rocstack-pip install --no-index --no-deps torch==2.13.0 \
    && rocstack-pip install torch==2.13.0 \
    && rocstack-pip install triton==3.6.0
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
ENV ROCSTACK_ARCHES="gfx942" \
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
FROM python-env AS build-flash-attention-triton
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    rocstack-pip install ninja==1.11.1.4 packaging==25.0 psutil==7.0.0 setuptools==78.1.1 wheel==0.45.1 einops==0.8.1
ENV ROCSTACK_ARCHES="gfx942" \
    WHEEL_DIR="/out/wheels" \
    FLASH_ATTENTION_TRITON_AMD_ENABLE="TRUE" \
    FLASH_ATTENTION_SKIP_CUDA_BUILD="TRUE" \
    FLASH_ATTENTION_FORCE_BUILD="TRUE"
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    rocstack-pip download --no-deps --no-build-isolation --no-binary :all: -d /tmp/sdist flash-attn==2.8.3.post2 \
    && mkdir -p /src/flash-attention-triton \
    && tar -xzf /tmp/sdist/*.tar.gz --strip-components=1 -C /src/flash-attention-triton
WORKDIR /src/flash-attention-triton
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
    && MAX_JOBS="$(rocstack-jobs flash-attention-triton 2 0)" \
    && export MAX_JOBS \
    && rocstack-pip wheel --no-deps --no-build-isolation -w "$WHEEL_DIR" . \
    && rocstack-pip download --no-deps --only-binary :all: -d "$WHEEL_DIR" einops==0.8.1 \
    && mkdir -p /out/tests && cp -r tests /out/tests/flash-attention-triton
FROM python-env AS build-fbgemm-gpu-cpu
ENV ROCSTACK_ARCHES="gfx942" \
    WHEEL_DIR="/out/wheels"
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_cert,target=/run/secrets/pip_cert \
    --mount=type=secret,id=pip_conf,target=/run/secrets/pip_conf \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    rocstack-pip download --no-deps --only-binary :all: -d /src/fbgemm-gpu-cpu fbgemm-gpu-cpu==1.8.0
WORKDIR /src/fbgemm-gpu-cpu
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
    && MAX_JOBS="$(rocstack-jobs fbgemm-gpu-cpu 2 0)" \
    && export MAX_JOBS \
    && cp ./fbgemm_gpu_cpu-*.whl "$WHEEL_DIR"/ \
    && rocstack-pip download --no-deps --only-binary :all: -d "$WHEEL_DIR" numpy==2.2.6

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
    --mount=type=bind,from=build-flash-attention-triton,source=/out/wheels,target=/tmp/wheels/flash-attention-triton \
    rocstack-pip install --no-deps --no-index /tmp/wheels/flash-attention-triton/*.whl
COPY --from=build-flash-attention-triton /out/tests/flash-attention-triton /opt/rocstack/upstream-tests/flash-attention-triton
ENV FLASH_ATTENTION_TRITON_AMD_ENABLE="TRUE"
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=bind,from=build-fbgemm-gpu-cpu,source=/out/wheels,target=/tmp/wheels/fbgemm-gpu-cpu \
    rocstack-pip install --no-deps --no-index /tmp/wheels/fbgemm-gpu-cpu/*.whl
COPY rocstack /opt/rocstack/src
COPY --from=build-rocstack-kernels /out/rocstack-build/ /opt/rocstack/build/
COPY --from=build-flash-attention-triton /out/rocstack-build/ /opt/rocstack/build/
COPY --from=build-fbgemm-gpu-cpu /out/rocstack-build/ /opt/rocstack/build/
RUN mkdir -p /opt/rocstack && printf '%s\n' 'rocstack 0.1.0' 'stack local-upstream' 'arches gfx942' 'torch 2.13.0 (cpu)' 'triton 3.6.0' 'rocstack-kernels 0.1.0 local:kernels@0.1.0' 'flash-attention-triton 2.8.3.post2 pypi:flash-attn==2.8.3.post2' 'fbgemm-gpu-cpu 1.8.0 pypi:fbgemm-gpu-cpu==1.8.0' > /opt/rocstack/versions.txt
LABEL io.rocstack.arches="gfx942" \
      io.rocstack.components="{\"fbgemm-gpu-cpu\":\"pypi:fbgemm-gpu-cpu==1.8.0\",\"flash-attention-triton\":\"pypi:flash-attn==2.8.3.post2\",\"rocstack-kernels\":\"local:kernels@0.1.0\"}" \
      io.rocstack.stack="local-upstream" \
      org.opencontainers.image.description="Debian 12 base built locally, CPU torch, Triton; rocstack-kernels, flash-attention (Triton backend), FBGEMM_GPU cpu" \
      org.opencontainers.image.title="rocstack local-upstream" \
      org.opencontainers.image.vendor="rocstack" \
      org.opencontainers.image.version="0.1.0"
