#!/usr/bin/env bash
# Makes a private CA and a serving certificate for tekton-retry with openssl, for clusters without
# cert-manager. See --help.
set -euo pipefail

NAMESPACE=tekton-retry
SERVICE=tekton-retry
SECRET=tekton-retry-tls
# kube-apiserver dials the Service as <service>.<namespace>.svc (the APIService's service reference).
DNS_NAMES=(
  "${SERVICE}"
  "${SERVICE}.${NAMESPACE}"
  "${SERVICE}.${NAMESPACE}.svc"
  "${SERVICE}.${NAMESPACE}.svc.cluster.local"
)
CA_DAYS=3650
SERVING_DAYS=365
# A serving certificate that expires within this many seconds is issued again (30 days).
RENEW_BEFORE_SECONDS=2592000

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_DIR=$(cd "${SCRIPT_DIR}/.." && pwd -P)
OVERLAY_DIR="${REPO_DIR}/deploy/overlays/self-signed"

usage() {
  cat <<EOF
Usage: hack/gen-certs.sh [--force] [OUT_DIR]

Creates, with openssl, a private CA and a serving certificate for the tekton-retry Service
(${DNS_NAMES[*]}; server auth; valid ${SERVING_DAYS} days), and a kustomize overlay that installs
tekton-retry with them.

OUT_DIR defaults to deploy/generated (git-ignored). It receives:
  ca.key, ca.crt          the CA (keep ca.key private; it is not put in the cluster)
  tls.key, tls.crt        the serving key and certificate
  secret.yaml             Secret ${NAMESPACE}/${SECRET} (kubernetes.io/tls) with tls.crt, tls.key, ca.crt
  caBundle-patch.yaml     sets the APIService caBundle to ca.crt
  kustomization.yaml      deploy/overlays/self-signed + the two files above

Then install with:
  kubectl apply -k OUT_DIR

Running it again keeps a CA and serving certificate that are still valid (the serving certificate
is issued again when it expires within 30 days or no longer matches the CA) and rewrites the
manifests, so it is safe to re-run. --force makes a new CA and certificate.
EOF
}

FORCE=0
OUT_DIR=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --force) FORCE=1 ;;
    -*) echo "gen-certs.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *)
      if [[ -n ${OUT_DIR} ]]; then
        echo "gen-certs.sh: only one OUT_DIR may be given (see --help)" >&2
        exit 2
      fi
      OUT_DIR=$1
      ;;
  esac
  shift
done
OUT_DIR=${OUT_DIR:-${REPO_DIR}/deploy/generated}

command -v openssl >/dev/null || { echo "gen-certs.sh: openssl not found" >&2; exit 1; }

CREATED_OUT_DIR=0
[[ -d ${OUT_DIR} ]] || CREATED_OUT_DIR=1
mkdir -p "${OUT_DIR}"
OUT_DIR=$(cd "${OUT_DIR}" && pwd -P)
# The generated kustomization uses deploy/overlays/self-signed as a resource, and kustomize refuses
# a resource directory that contains, or is contained in, the kustomization using it.
if [[ ${OUT_DIR}/ == "${OVERLAY_DIR}"/* || ${OVERLAY_DIR}/ == "${OUT_DIR}"/* ]]; then
  [[ ${CREATED_OUT_DIR} == 0 ]] || rmdir "${OUT_DIR}"
  echo "gen-certs.sh: OUT_DIR may neither contain nor be inside ${OVERLAY_DIR}" >&2
  exit 2
fi
WORK=$(mktemp -d)
trap 'rm -rf "${WORK}"' EXIT

log() { echo "gen-certs.sh: $*" >&2; }

# Relative path from directory $2 to directory $1 (kustomize refuses absolute resource paths).
relpath() {
  local target from common up="" rest
  target=$(cd "$1" && pwd -P)
  from=$(cd "$2" && pwd -P)
  common=${from}
  while :; do
    if [[ ${target} == "${common}" ]]; then rest=""; break; fi
    if [[ ${common} == / ]]; then rest=${target#/}; break; fi
    if [[ ${target} == "${common}"/* ]]; then rest=${target#"${common}"/}; break; fi
    common=$(dirname "${common}")
    up="../${up}"
  done
  local result="${up}${rest}"
  result=${result%/}
  echo "${result:-.}"
}

# Whether the private key file $1 belongs to the certificate file $2.
key_matches() {
  [[ "$(openssl pkey -in "$1" -pubout 2>/dev/null)" == "$(openssl x509 -in "$2" -noout -pubkey 2>/dev/null)" ]]
}

SAN=$(printf 'DNS:%s,' "${DNS_NAMES[@]}")
SAN=${SAN%,}
cat >"${WORK}/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[serving]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = ${SAN}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF

new_key() {
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null)
}

ca_valid() {
  [[ -s ${OUT_DIR}/ca.key && -s ${OUT_DIR}/ca.crt ]] &&
    openssl x509 -in "${OUT_DIR}/ca.crt" -noout -checkend "${RENEW_BEFORE_SECONDS}" >/dev/null 2>&1 &&
    key_matches "${OUT_DIR}/ca.key" "${OUT_DIR}/ca.crt"
}

serving_valid() {
  [[ -s ${OUT_DIR}/tls.key && -s ${OUT_DIR}/tls.crt ]] || return 1
  openssl x509 -in "${OUT_DIR}/tls.crt" -noout -checkend "${RENEW_BEFORE_SECONDS}" >/dev/null 2>&1 || return 1
  key_matches "${OUT_DIR}/tls.key" "${OUT_DIR}/tls.crt" || return 1
  openssl verify -CAfile "${OUT_DIR}/ca.crt" "${OUT_DIR}/tls.crt" >/dev/null 2>&1 || return 1
  local text name
  text=$(openssl x509 -in "${OUT_DIR}/tls.crt" -noout -text)
  for name in "${DNS_NAMES[@]}"; do
    grep -Eq "DNS:${name//./\\.}(,|\$)" <<<"${text}" || return 1
  done
}

random_serial() { echo "0x$(openssl rand -hex 16)"; }

if [[ ${FORCE} == 1 ]] || ! ca_valid; then
  log "creating a new CA in ${OUT_DIR}"
  new_key "${OUT_DIR}/ca.key"
  openssl req -x509 -new -config "${WORK}/openssl.cnf" -extensions ca \
    -key "${OUT_DIR}/ca.key" -subj "/CN=tekton-retry-ca" \
    -days "${CA_DAYS}" -sha256 -set_serial "$(random_serial)" -out "${OUT_DIR}/ca.crt"
  FORCE=1 # a new CA needs a new serving certificate
else
  log "keeping the CA in ${OUT_DIR}"
fi

if [[ ${FORCE} == 1 ]] || ! serving_valid; then
  log "issuing a serving certificate for ${DNS_NAMES[*]}"
  new_key "${OUT_DIR}/tls.key"
  openssl req -new -config "${WORK}/openssl.cnf" -key "${OUT_DIR}/tls.key" \
    -subj "/CN=${SERVICE}.${NAMESPACE}.svc" -out "${WORK}/tls.csr"
  openssl x509 -req -in "${WORK}/tls.csr" -CA "${OUT_DIR}/ca.crt" -CAkey "${OUT_DIR}/ca.key" \
    -set_serial "$(random_serial)" -days "${SERVING_DAYS}" -sha256 \
    -extfile "${WORK}/openssl.cnf" -extensions serving -out "${OUT_DIR}/tls.crt" 2>/dev/null
else
  log "keeping the serving certificate in ${OUT_DIR}"
fi
openssl verify -CAfile "${OUT_DIR}/ca.crt" "${OUT_DIR}/tls.crt" >/dev/null

b64() { openssl base64 -A -in "$1"; }

cat >"${OUT_DIR}/secret.yaml" <<EOF
# Generated by hack/gen-certs.sh. Serving certificate of tekton-retry, mounted by its pods.
apiVersion: v1
kind: Secret
metadata:
  name: ${SECRET}
  namespace: ${NAMESPACE}
  labels:
    app.kubernetes.io/name: tekton-retry
type: kubernetes.io/tls
data:
  tls.crt: $(b64 "${OUT_DIR}/tls.crt")
  tls.key: $(b64 "${OUT_DIR}/tls.key")
  ca.crt: $(b64 "${OUT_DIR}/ca.crt")
EOF

# The patch is the committed template with the placeholder replaced (and its comment dropped).
{
  echo "# Generated by hack/gen-certs.sh from deploy/overlays/self-signed/caBundle-patch.yaml."
  grep -v '^#' "${OVERLAY_DIR}/caBundle-patch.yaml" |
    sed "s|^\(  caBundle:\).*|\1 $(b64 "${OUT_DIR}/ca.crt")|"
} >"${OUT_DIR}/caBundle-patch.yaml"
grep -q "caBundle: $(b64 "${OUT_DIR}/ca.crt")" "${OUT_DIR}/caBundle-patch.yaml" ||
  { echo "gen-certs.sh: the caBundle template has no caBundle line" >&2; exit 1; }

cat >"${OUT_DIR}/kustomization.yaml" <<EOF
# Generated by hack/gen-certs.sh: tekton-retry with the certificates in this directory.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(relpath "${OVERLAY_DIR}" "${OUT_DIR}")
  - secret.yaml
patches:
  - path: caBundle-patch.yaml
EOF

log "wrote ${OUT_DIR}; install with: kubectl apply -k ${OUT_DIR}"
