#!/usr/bin/env bash
# End-to-end test on a real cluster: kind + the latest Tekton release + tekton-retry built from this
# checkout. A pipeline fails because a ConfigMap is missing; the ConfigMap is created; the run is
# retried in place through the aggregated API; the run must then succeed, keeping the task that
# had already succeeded.
#
# Needs docker (with a running engine), kind, kubectl, openssl and network access. It cannot run
# on machines without a Docker engine or network (such as the project's CI machines).
#
# Environment:
#   CLUSTER          kind cluster name (default tekton-retry-e2e); reused when it exists
#   KEEP=1           keep the cluster afterwards (default: delete it if this script created it)
#   TEKTON_RELEASE   Tekton Pipelines release manifest
#                    (default https://storage.googleapis.com/tekton-releases/pipeline/latest/release.yaml)
#   STEP_IMAGE       image for the pipeline's steps (default busybox:1.36)
set -euo pipefail

CLUSTER=${CLUSTER:-tekton-retry-e2e}
KEEP=${KEEP:-0}
TEKTON_RELEASE=${TEKTON_RELEASE:-https://storage.googleapis.com/tekton-releases/pipeline/latest/release.yaml}
STEP_IMAGE=${STEP_IMAGE:-busybox:1.36}
# The image deploy/base names, so the manifests need no edit; kind load makes it present on the node.
IMAGE=ghcr.io/tekton-retry/tekton-retry:v0.1.0
NS=e2e
RUN=e2e-run
APISERVICE=v1alpha1.retry.tekton.dev
RETRY_PATH=/apis/retry.tekton.dev/v1alpha1/namespaces/${NS}/pipelineruns/${RUN}/retry

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 0
fi

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
WORK=$(mktemp -d)
CREATED_CLUSTER=0
HAVE_CLUSTER=0
KCTX=kind-${CLUSTER}

step() { printf '\n==> %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
fail() {
  printf '\nFAILED: %s\n' "$*" >&2
  exit 1
}
k() { kubectl --context "${KCTX}" "$@"; }

diagnostics() {
  printf '\n--- diagnostics ---\n' >&2
  k get apiservice "${APISERVICE}" -o yaml >&2 || true
  k -n tekton-retry get pods -o wide >&2 || true
  k -n tekton-retry logs deployment/tekton-retry --all-containers --tail=100 >&2 || true
  k -n "${NS}" get pipelinerun "${RUN}" -o yaml >&2 || true
  k -n "${NS}" get taskruns,pods >&2 || true
}

cleanup() {
  local rc=$?
  [[ ${rc} == 0 || ${HAVE_CLUSTER} == 0 ]] || diagnostics
  rm -rf "${WORK}"
  if [[ ${CREATED_CLUSTER} == 1 && ${KEEP} != 1 ]]; then
    step "deleting kind cluster ${CLUSTER} (KEEP=1 keeps it)"
    kind delete cluster --name "${CLUSTER}" || true
  fi
  if [[ ${rc} == 0 ]]; then printf '\nPASSED\n'; fi
}
trap cleanup EXIT

step "checking tools"
for tool in docker kind kubectl openssl; do
  command -v "${tool}" >/dev/null || fail "${tool} is required"
done
docker info >/dev/null 2>&1 || fail "docker is installed but no Docker engine answers"
ok "docker, kind, kubectl, openssl"

step "kind cluster ${CLUSTER}"
if kind get clusters 2>/dev/null | grep -qx "${CLUSTER}"; then
  ok "reusing the existing cluster"
else
  kind create cluster --name "${CLUSTER}" --wait 120s
  CREATED_CLUSTER=1
fi
HAVE_CLUSTER=1

step "installing Tekton Pipelines (${TEKTON_RELEASE})"
k apply -f "${TEKTON_RELEASE}" >/dev/null
k -n tekton-pipelines wait --for=condition=Available --timeout=300s \
  deployment/tekton-pipelines-controller deployment/tekton-pipelines-webhook
ok "controller and webhook available"

step "building ${IMAGE} and loading it into the cluster"
docker build -t "${IMAGE}" "${REPO_DIR}"
kind load docker-image "${IMAGE}" --name "${CLUSTER}"

step "installing tekton-retry with certificates from hack/gen-certs.sh"
"${REPO_DIR}/hack/gen-certs.sh" "${WORK}/install"
k apply -k "${WORK}/install"
k -n tekton-retry rollout status deployment/tekton-retry --timeout=180s
k wait --for=condition=Available --timeout=120s "apiservice/${APISERVICE}"
k get apiservice "${APISERVICE}"
ok "APIService available"

step "checking discovery and who may retry"
k get --raw /apis/retry.tekton.dev/v1alpha1 >/dev/null
k create namespace "${NS}" --dry-run=client -o yaml | k apply -f - >/dev/null
# A CI ServiceAccount granted only tekton-retry-edit (it does the retry below), a user with the
# built-in edit role (tekton-retry-edit is aggregated into it) and one with view (it is not).
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: ci, namespace: ${NS}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ci-retry, namespace: ${NS}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tekton-retry-edit}
subjects: [{kind: ServiceAccount, name: ci, namespace: ${NS}}]
EOF
# bind_user BINDING CLUSTERROLE USER: a RoleBinding in ${NS} (applied, so a re-run keeps it).
bind_user() {
  k -n "${NS}" create rolebinding "$1" --clusterrole="$2" --user="$3" --dry-run=client -o yaml \
    | k apply -f - >/dev/null
}
bind_user alice-edit edit alice
bind_user bob-view view bob
CI_USER=system:serviceaccount:${NS}:ci
can_retry() { k auth can-i create pipelineruns.retry.tekton.dev --subresource=retry -n "${NS}" --as "$1" 2>/dev/null || true; }
[[ $(can_retry "${CI_USER}") == yes ]] || fail "${CI_USER} (tekton-retry-edit) may not retry"
# Aggregation into edit is done by a controller, shortly after install: give it a moment.
for _ in $(seq 30); do [[ $(can_retry alice) == yes ]] && break; sleep 1; done
[[ $(can_retry alice) == yes ]] || fail "alice (edit) may not retry: is tekton-retry-edit aggregated?"
[[ $(can_retry bob) == no ]] || fail "bob (view) may retry"
ok "discovery answers; tekton-retry-edit and edit may retry, view may not"

step "running a pipeline that fails until ConfigMap ${NS}/e2e-flag exists"
k apply -f - <<EOF
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: flaky
  namespace: ${NS}
spec:
  volumes:
    - name: flag
      configMap:
        name: e2e-flag
        optional: true
  steps:
    - name: check
      image: ${STEP_IMAGE}
      volumeMounts:
        - name: flag
          mountPath: /flag
      script: |
        #!/bin/sh
        if [ -f /flag/go ]; then echo "flag found"; else echo "flag missing, failing"; exit 1; fi
---
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: hello
  namespace: ${NS}
spec:
  steps:
    - name: hello
      image: ${STEP_IMAGE}
      script: |
        #!/bin/sh
        echo hello
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: e2e
  namespace: ${NS}
spec:
  tasks:
    - name: first
      taskRef: {name: hello}
    - name: flaky
      runAfter: [first]
      taskRef: {name: flaky}
  finally:
    - name: report
      taskRef: {name: hello}
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  name: ${RUN}
  namespace: ${NS}
spec:
  pipelineRef: {name: e2e}
EOF
k -n "${NS}" wait --for=condition=Succeeded=False --timeout=300s "pipelinerun/${RUN}"
[[ $(k -n "${NS}" get pipelineruns "${RUN}" -o jsonpath='{.apiVersion}') == tekton.dev/v1 ]] ||
  fail "'kubectl get pipelineruns' did not resolve to tekton.dev (check groupPriorityMinimum)"
FIRST_UID=$(k -n "${NS}" get taskruns -l tekton.dev/pipelineTask=first -o jsonpath='{.items[0].metadata.uid}')
[[ -n ${FIRST_UID} ]] || fail "no TaskRun for task 'first'"
ok "the run failed; task 'first' succeeded as TaskRun uid ${FIRST_UID}"

step "fixing the cause and retrying (dry run first)"
k -n "${NS}" create configmap e2e-flag --from-literal=go=1
cat >"${WORK}/body.json" <<EOF
{"apiVersion":"retry.tekton.dev/v1alpha1","kind":"PipelineRunRetry",
 "metadata":{"name":"${RUN}","namespace":"${NS}"},
 "spec":{"reason":"e2e: created ConfigMap e2e-flag","preconditions":{"attempt":1}}}
EOF
k create --raw "${RETRY_PATH}?dryRun=All" -f "${WORK}/body.json" --as "${CI_USER}"
echo
k create --raw "${RETRY_PATH}" -f "${WORK}/body.json" --as "${CI_USER}"
echo

step "waiting for the retried run to succeed"
k -n "${NS}" wait --for=condition=Succeeded=True --timeout=300s "pipelinerun/${RUN}"
ATTEMPT=$(k -n "${NS}" get pipelinerun "${RUN}" -o jsonpath='{.metadata.annotations.retry\.tekton\.dev/attempt}')
[[ ${ATTEMPT} == 2 ]] || fail "annotation retry.tekton.dev/attempt is '${ATTEMPT}', want 2"
AFTER_UID=$(k -n "${NS}" get taskruns -l tekton.dev/pipelineTask=first -o jsonpath='{.items[0].metadata.uid}')
[[ ${AFTER_UID} == "${FIRST_UID}" ]] || fail "task 'first' ran again (TaskRun uid ${FIRST_UID} -> ${AFTER_UID})"
k -n "${NS}" get configmap "${RUN}-retry-history" >/dev/null || fail "no attempt history ConfigMap"
k -n "${NS}" get pipelinerun "${RUN}"
ok "attempt 2 succeeded; 'first' was kept; history recorded"

step "retrying the succeeded run is refused (409 Conflict)"
echo '{}' >"${WORK}/empty.json"
if k create --raw "${RETRY_PATH}" -f "${WORK}/empty.json" --as "${CI_USER}" 2>"${WORK}/err"; then
  fail "retrying a succeeded run was accepted"
fi
grep -q Conflict "${WORK}/err" || fail "expected a Conflict, got: $(cat "${WORK}/err")"
ok "$(cat "${WORK}/err")"
