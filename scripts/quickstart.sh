#!/usr/bin/env bash
# The quick start: install dependencies, build, and run the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
model=models/gemma4-tiny.gguf
if [ ! -f "$model" ]; then
  mkdir -p models
  build/gemma4 create --preset tiny --seed 1 -o "$model"
fi
build/gemma4 info "$model"
build/gemma4 generate -m "$model" -p "The quick brown fox" -n 32 --temp 0
