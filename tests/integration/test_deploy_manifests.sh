#!/usr/bin/env bash
# drover - tests/integration/test_deploy_manifests.sh
#
# deploy/ parses and holds what Kubernetes and KEDA require, and its parts
# agree: the ScaledObject targets the Deployment and the ConfigMap's group
# and topic, maxReplicaCount <= partitions, the grace period exceeds the
# drain deadline, probes hit paths the admin server routes, secrets come
# from the Secret only.  The ConfigMap's drover.yaml is loaded by the real
# config loader, and the systemd unit passes systemd-analyze verify.
# Needs no stack.
set -euo pipefail
: "${DROVER_SOURCE_DIR:?}" "${DROVER_BIN:?}"
D=$DROVER_SOURCE_DIR/deploy
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 - "$D" "$DROVER_SOURCE_DIR" "$work" <<'PY'
import re, sys, yaml
d, src, work = sys.argv[1:4]
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)
def load(name):
    docs = [x for x in yaml.safe_load_all(open(f"{d}/kubernetes/{name}")) if x]
    check(len(docs) == 1, f"{name}: {len(docs)} documents")
    doc = docs[0]
    for k in ("apiVersion", "kind", "metadata"):
        check(k in doc, f"{name}: no {k}")
    check(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?",
                       doc["metadata"].get("name", "")), f"{name}: bad name")
    return doc

dep = load("deployment.yaml")
cm = load("configmap.yaml")
sec = load("secret.example.yaml")
so = load("keda-scaledobject.yaml")

# Deployment: what the API server requires, and what we promise.
check(dep["apiVersion"] == "apps/v1" and dep["kind"] == "Deployment", "deployment kind")
spec = dep["spec"]
sel = spec["selector"]["matchLabels"]
tlabels = spec["template"]["metadata"]["labels"]
check(all(tlabels.get(k) == v for k, v in sel.items()), "selector does not match template labels")
pod = spec["template"]["spec"]
cons = pod["containers"]
check(len(cons) >= 1 and all("name" in c and "image" in c for c in cons), "containers need name and image")
c = cons[0]
for kind in ("requests", "limits"):
    for res in ("cpu", "memory"):
        check(res in c.get("resources", {}).get(kind, {}), f"no resources.{kind}.{res}")
ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
    pr = c.get(probe, {}).get("httpGet", {})
    check(pr.get("path") == path, f"{probe} path {pr.get('path')}")
    port = pr.get("port")
    check(port in ports or port in ports.values(), f"{probe} port {port} not declared")
# the probe paths are routes of the admin server
routes = open(f"{src}/consumer/admin/admin_req.c").read()
for path in ("/readyz", "/healthz", "/metrics"):
    check(f'{{"{path}", ' in routes, f"admin server has no route {path}")
ann = spec["template"]["metadata"].get("annotations", {})
check(ann.get("prometheus.io/path") == "/metrics", "scrape path")
check(str(ann.get("prometheus.io/port")) in map(str, ports.values()), "scrape port")

# Config from the ConfigMap, secrets from the Secret.
conf = yaml.safe_load(cm["data"]["drover.yaml"])
open(f"{work}/drover.yaml", "w").write(cm["data"]["drover.yaml"])
mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
vols = {v["name"]: v for v in pod.get("volumes", [])}
cmvol = [n for n, v in vols.items() if v.get("configMap", {}).get("name") == cm["metadata"]["name"]]
check(len(cmvol) == 1 and cmvol[0] in mounts, "configmap not mounted")
check(f"{mounts.get(cmvol[0] if cmvol else '', '')}/drover.yaml" in " ".join(c.get("args", [])),
      "worker not started with the mounted drover.yaml")
check(any(e.get("secretRef", {}).get("name") == sec["metadata"]["name"]
          for e in c.get("envFrom", [])), "secret not in envFrom")
secret_keys = set(sec.get("stringData", {}))
check({"DATABASE_URL", "DROVER_ADMIN_TOKEN"} <= secret_keys, f"secret keys {secret_keys}")
cm_text = cm["data"]["drover.yaml"]
check("url:" not in cm_text.split("database:")[-1].split("\n")[1] if "database:" in cm_text else True,
      "database url in the configmap")
check(not re.search(r"(?i)(password|token)\s*:", cm_text), "a secret in the configmap")
for e in c.get("env", []):
    check(e["name"] not in ("DATABASE_URL", "DROVER_ADMIN_TOKEN", "BACKSTAGE_TOKEN")
          or "valueFrom" in e, f"secret {e['name']} inline in env")
listen = conf.get("http", {}).get("listen", "")
check(listen.startswith("0.0.0.0:") and int(listen.rsplit(":", 1)[1]) in ports.values(),
      f"http.listen {listen} does not serve the probe port")

# Pod names of a Deployment are random: static membership would only keep
# a stopped pod's partitions until its session timed out.
check(dep["kind"] != "Deployment" or conf.get("static_membership") == "off",
      "a Deployment must set static_membership: off")

# Drain deadline vs grace period.
drain_s = conf.get("drain_timeout_ms", 30000) / 1000
grace = pod.get("terminationGracePeriodSeconds", 30)
check(grace >= drain_s + 10, f"terminationGracePeriodSeconds {grace} < drain {drain_s} s + 10")

# KEDA ScaledObject with the kafka trigger.
check(so["apiVersion"] == "keda.sh/v1alpha1" and so["kind"] == "ScaledObject", "scaledobject kind")
sos = so["spec"]
tgt = sos["scaleTargetRef"]
check(tgt.get("name") == dep["metadata"]["name"], "scaleTargetRef is not the deployment")
check(tgt.get("kind", "Deployment") == "Deployment", "scaleTargetRef kind")
trig = [t for t in sos.get("triggers", []) if t.get("type") == "kafka"]
check(len(trig) == 1, "no kafka trigger")
m = trig[0]["metadata"] if trig else {}
for k in ("bootstrapServers", "consumerGroup", "topic", "lagThreshold", "offsetResetPolicy"):
    check(k in m, f"kafka trigger has no {k}")
for k, v in m.items():
    check(isinstance(v, str), f"trigger metadata {k} must be a string (KEDA)")
check(m.get("consumerGroup") == conf.get("group"), "consumerGroup != config group")
check(m.get("topic") == conf.get("topic"), "topic != config topic")
check(m.get("bootstrapServers") == conf.get("brokers"), "bootstrapServers != config brokers")
check(m.get("lagThreshold", "").isdigit() and int(m["lagThreshold"]) > 0, "lagThreshold")
check(m.get("offsetResetPolicy") in ("earliest", "latest"), "offsetResetPolicy")
check(1 <= sos.get("minReplicaCount", 0) <= sos.get("maxReplicaCount", 0), "replica bounds")
check(sos.get("maxReplicaCount", 99) <= conf.get("topic_partitions", 12),
      "maxReplicaCount above the partition count")

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
PY

# The ConfigMap's drover.yaml is accepted by the worker's own loader: a
# bad key fails with "drover.yaml:<line>: ..." before any connection.  The
# worker then tries to reach an unreachable cluster and exits; only the
# config errors matter here.
set +e
DROVER_BROKERS=127.0.0.1:1 DATABASE_URL=postgresql://x@127.0.0.1:1/x \
  DROVER_HTTP_LISTEN= timeout 30 "$DROVER_BIN" worker \
  --config "$work/drover.yaml" >/dev/null 2>"$work/worker.err"
rc=$?
set -e
if grep -q "drover.yaml:[0-9]" "$work/worker.err" || [ $rc = 2 ]; then
  echo "configmap drover.yaml refused (rc $rc):" >&2
  cat "$work/worker.err" >&2
  exit 1
fi
# ... and the same loader does refuse a bad key (this check can fail)
printf 'brokers: x\nno_such_key: 1\n' >"$work/bad.yaml"
set +e
timeout 30 "$DROVER_BIN" worker --config "$work/bad.yaml" >/dev/null \
  2>"$work/bad.err"
set -e
grep -q "bad.yaml:2" "$work/bad.err" ||
  { echo "loader did not name bad.yaml:2: $(cat "$work/bad.err")" >&2; exit 1; }

# systemd unit.
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$work/unit"
  sed "s#/usr/local/bin/drover#$DROVER_BIN#" \
    "$D/systemd/drover-worker@.service" >"$work/unit/drover-worker@.service"
  ln -s "drover-worker@.service" "$work/unit/drover-worker@0.service"
  systemd-analyze verify --man=no "$work/unit/drover-worker@0.service" \
    >"$work/verify.txt" 2>&1 || { cat "$work/verify.txt" >&2; exit 1; }
  if grep -v "drover.env\|worker-0.env\|User\|Group" "$work/verify.txt" |
    grep -qi "drover-worker"; then
    cat "$work/verify.txt" >&2
    exit 1
  fi
fi
grep -q '^TimeoutStopSec=60' "$D/systemd/drover-worker@.service"
grep -q '^ExecStart=.* worker --config ' "$D/systemd/drover-worker@.service"
grep -q '^Environment=DROVER_INSTANCE=' "$D/systemd/drover-worker@.service"
echo "ok: deploy manifests"
