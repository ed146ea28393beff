#!/bin/sh
# pip with the host's package-index settings, read from BuildKit secrets mounted
# for this RUN only, so no CA bundle, index URL or credential lands in a layer.
set -e
[ -s /run/secrets/pip_cert ] && export PIP_CERT=/run/secrets/pip_cert
[ -s /run/secrets/pip_conf ] && export PIP_CONFIG_FILE=/run/secrets/pip_conf
[ -d /wheelhouse ] && [ -n "$(ls -A /wheelhouse 2>/dev/null)" ] && export PIP_FIND_LINKS=/wheelhouse
exec python3 -m pip "$@"
