#!/usr/bin/env bash
# The quick start: install dependencies, build, and run the default model (models/README.md): a small
# Gemma 4 trained by tools/train, asked a question it answers by thinking and calling a tool.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
model=models/gemma4-tiny-chat.gguf
build/gemma4 info "$model"
echo
echo '$ build/gemma4 run -m models/gemma4-tiny-chat.gguf --think --tools models/tools.json --tool-exec "python3 models/demo_tools.py" "What is 37 * 12?"'
build/gemma4 run -m "$model" --temp 0 --think --tools models/tools.json --tool-exec "python3 models/demo_tools.py" \
  "What is 37 * 12?"
