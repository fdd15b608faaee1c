#!/usr/bin/env bash
# The whole recipe, from nothing to the committed files under models/ (see README.md for timings).
# Usage: tools/train/run_all.sh [WORK_DIR]   (run from the repository root, after scripts/build.sh)
set -euo pipefail
W=${1:-/tmp/gemma4-train}
PY=/usr/bin/python3
T=tools/train
mkdir -p "$W"
$PY $T/gen_data.py "$W/data" --n-train 80000 --n-heldout 400 --n-eval 90
$PY $T/train_tokenizer.py "$W/data" 2048 "$W/tok"
nice -n 10 $PY $T/train.py "$W/data" "$W/tok" "$W/run" --steps 7000 --minutes 55
nice -n 10 $PY $T/train_assistant.py "$W/data" "$W/tok" "$W/run" "$W/run" --steps 3000 --minutes 22
$PY $T/export.py "$W/data" "$W/tok" "$W/run" "$W/hf" models
cp "$W/run/curve.json" "$W/run/assistant_curve.json" models/fixtures/
build/gemma4 convert "$W/hf/gemma4-tiny-chat" -o models/gemma4-tiny-chat.gguf
build/gemma4 convert "$W/hf/gemma4-tiny-chat-assistant" -o models/gemma4-tiny-chat-assistant.gguf
build/gemma4 quantize models/gemma4-tiny-chat.gguf models/gemma4-tiny-chat.q8_0.gguf Q8_0
build/gemma4 perplexity -m models/gemma4-tiny-chat.gguf -f models/fixtures/heldout_prose.txt
