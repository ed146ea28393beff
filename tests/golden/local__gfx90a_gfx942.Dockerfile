# Rendered by rocstack 0.1.0 from stack 'local' for gfx90a,gfx942.
# Do not edit: re-render with `rocstack render --stack local --arch gfx90a,gfx942`.

FROM rocstack-base/local:bookworm-d11e661760c2 AS base
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
COPY rocstack /opt/rocstack/src
COPY --from=build-rocstack-kernels /out/rocstack-build/ /opt/rocstack/build/
RUN mkdir -p /opt/rocstack && printf '%s\n' 'rocstack 0.1.0' 'stack local' 'arches gfx90a,gfx942' 'torch 2.13.0 (cpu)' 'triton 3.6.0' 'rocstack-kernels 0.1.0 local:kernels@0.1.0' > /opt/rocstack/versions.txt
LABEL io.rocstack.arches="gfx90a,gfx942" \
      io.rocstack.components="{\"rocstack-kernels\":\"local:kernels@0.1.0\"}" \
      io.rocstack.stack="local" \
      org.opencontainers.image.description="Debian 12 base built locally, CPU torch, Triton, rocstack-kernels AOT-built per gfx arch" \
      org.opencontainers.image.title="rocstack local" \
      org.opencontainers.image.vendor="rocstack" \
      org.opencontainers.image.version="0.1.0"
