# docker-compose up --build -d          # builds this image for every service of docker-compose.yml
# docker build -t distbp .              # or just the image: the project with its data, MPI and Ray extras
#
# One image for the whole demo cluster: Ray head and workers (launch/ray_head.sh, launch/ray_worker.sh)
# and MPI nodes (launch/mpi_node.sh: sshd, so MPICH's mpiexec can reach them with a hostfile).
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-server openssh-client procps \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/distbp
# dependencies first (cached while only the code changes)
COPY pyproject.toml README.md ./
COPY distbp ./distbp
RUN pip install --no-cache-dir ".[data,mpi,ray]" \
 && pip install --no-cache-dir --no-deps -e .
COPY configs ./configs
COPY launch ./launch

# The MPI nodes log into each other as root with one key made at build time. It is baked into the
# image, so this is for a private compose network only: no sshd port is published to the host.
RUN mkdir -p /run/sshd /root/.ssh \
 && ssh-keygen -q -t ed25519 -N "" -f /root/.ssh/id_ed25519 \
 && cp /root/.ssh/id_ed25519.pub /root/.ssh/authorized_keys \
 && printf 'Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n' \
      > /root/.ssh/config \
 && chmod 700 /root/.ssh && chmod 600 /root/.ssh/*

ENV RAY_AUTH_MODE=token \
    PYTHONUNBUFFERED=1
CMD ["distbp", "--help"]
