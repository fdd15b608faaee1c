# Test media for the multimodal timings (docs/benchmarks.md): a 1024x768 RGB PNG (gradients, a
# sinusoid and noise) and 30 s WAVs (a chirp with noise; 16 kHz mono, and 44.1 kHz stereo, which is
# downmixed and resampled). Standard library only.
# Usage: python3 bench/make_media.py [OUT_DIR]
import math, random, struct, sys, wave, zlib
out = sys.argv[1] if len(sys.argv) > 1 else '.'
W, H = 1024, 768
rnd = random.Random(1)
rows = bytearray()
for y in range(H):
    rows.append(0)  # PNG filter: none
    for x in range(W):
        rows += bytes((x * 255 // W ^ rnd.getrandbits(4), y * 255 // H, int(127 + 120 * math.sin(x * y / 4000.0))))
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
png = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', W, H, 8, 2, 0, 0, 0)) +
       chunk(b'IDAT', zlib.compress(bytes(rows), 6)) + chunk(b'IEND', b''))
open(out + '/img_1024x768.png', 'wb').write(png)
def tone(rate, ch, path):
    frames = bytearray()
    for i in range(rate * 30):  # exactly 30 s: 750 frames of 40 ms at 16 kHz
        t = i / rate
        s = 0.3 * math.sin(2 * math.pi * (220 + 200 * t) * t) + 0.05 * (rnd.random() - 0.5)
        frames += struct.pack('<' + 'h' * ch, *([int(32767 * s)] * ch))
    with wave.open(path, 'wb') as w:
        w.setnchannels(ch); w.setsampwidth(2); w.setframerate(rate); w.writeframes(bytes(frames))
tone(16000, 1, out + '/aud_30s_16k_mono.wav')
tone(44100, 2, out + '/aud_30s_44k1_stereo.wav')
