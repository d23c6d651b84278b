# docker build -t distbp .                                    # python:3.11-slim-bookworm base
# docker build -t distbp --build-arg BASE=local/debian:bookworm .   # a base made offline (launch/debian_base.sh)
# launch/docker_image.sh                                      # the same with the options this machine needs
#
# One image for the whole demo cluster (docker-compose.yml): Ray head and workers (launch/ray_head.sh,
# launch/ray_worker.sh) and MPI nodes (launch/mpi_node.sh: sshd for MPICH's mpiexec, and Slurm).
# Needs BuildKit (the default builder since Docker 23; DOCKER_BUILDKIT=1 before that).
# No private key is in the image: sshd's host key, the MPI nodes' login key and munge's key are made
# when a container starts (launch/mpi_node.sh), the group's keys into a volume only they mount.
#
# Layers, from the least to the most often changed: system packages; the Python dependencies, listed
# from pyproject.toml alone (editing the code or README.md reuses them: Ray is not reinstalled);
# the code. A TLS-intercepting proxy's CA bundle can be lent to pip for the build only:
#   docker build --secret id=pip_cert,src=/etc/ssl/certs/ca-certificates.crt ...
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

# ssh for MPICH's launcher, Slurm with munge (the MPI nodes are also a Slurm cluster, 14 MB);
# python3 with venv only where the base has no Python (plain Debian). The keys that the packages
# make at install time (sshd's host keys, munge's key) are deleted: they are made at start-up.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        openssh-server openssh-client procps slurmd slurmctld slurm-client munge \
        $(command -v python3 >/dev/null || echo python3 python3-venv) \
 && rm -rf /var/lib/apt/lists/* /etc/ssh/ssh_host_* /etc/munge/munge.key

# A virtual environment: Debian's own python3 refuses pip installs into the system (PEP 668).
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
RUN python3 -m venv "$VIRTUAL_ENV"

# The dependencies of distbp and of the extras named in DISTBP_EXTRAS, read from pyproject.toml
# (no code copied yet), plus the build backend, so that the editable install below needs no index.
ARG DISTBP_EXTRAS=data,mpi,ray
WORKDIR /opt/distbp
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip_cert --mount=type=cache,target=/root/.cache/pip \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
 && python3 -c 'import sys, tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
        extras = [e for e in sys.argv[1].split(",") if e]; \
        opt = p["project"].get("optional-dependencies", {}); \
        bad = [e for e in extras if e not in opt]; \
        sys.exit(f"DISTBP_EXTRAS: no extra {bad} in pyproject.toml (have {sorted(opt)})") if bad else None; \
        reqs = p["project"]["dependencies"] + [r for e in extras for r in opt[e]] \
            + p["build-system"]["requires"] + ["wheel"]; \
        print("\n".join(r for r in reqs if not r.startswith(p["project"]["name"] + "[")))' \
        "$DISTBP_EXTRAS" > /tmp/requirements.txt \
 && pip install --disable-pip-version-check -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The code. The editable install only writes the `distbp` command and a path to /opt/distbp.
COPY README.md ./
COPY distbp ./distbp
RUN pip install --disable-pip-version-check --no-deps --no-build-isolation --no-index -e . \
 && distbp --help >/dev/null
COPY configs ./configs
COPY launch ./launch

ENV RAY_AUTH_MODE=token
CMD ["distbp", "--help"]
