# Sourced by the bench and test scripts: the environment every run uses.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PWD/.venv/bin:$PATH"
if [ -z "${IOTBENCH_DATA:-}" ] && [ -d ../shared/data/cifar10 ]; then
  IOTBENCH_DATA="$(cd ../shared/data/cifar10 && pwd)"
  export IOTBENCH_DATA
fi
export SPARK_LOCAL_IP=127.0.0.1
export TF_CPP_MIN_LOG_LEVEL=2
