// Starts and stops gemma4 serve for the real-client tests: loopback, any free port (read from the
// server's "listening" log line), the synthetic test model, one thread per forward pass.
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';

export const BIN = process.env.GEMMA4_BIN;
export const MODEL = process.env.GEMMA4_TEST_MODEL;

export async function startServer(args = []) {
  const proc = spawn(BIN, ['serve', '-m', MODEL, '--host', '127.0.0.1', '--port', '0', '-t', '1', ...args],
                     { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gemma4 serve did not get ready:\n' + log)), 120000);
    proc.stderr.on('data', (d) => {
      log += d;
      const port = log.match(/"event":"listening".*"port":(\d+)/);
      if (port && log.includes('"event":"ready"')) {
        clearTimeout(timer);
        resolve(Number(port[1]));
      }
    });
    proc.on('exit', (code) => reject(new Error(`gemma4 serve exited with ${code}:\n${log}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    log: () => log,
    // SIGTERM: the server finishes what runs and exits with status 0.
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const [code] = await once(proc, 'exit');
      return code;
    },
    async metric(name) {
      const text = await (await fetch(url + '/metrics')).text();
      const m = text.match(new RegExp('^' + name + ' ([0-9.e+-]+)$', 'm'));
      return m ? Number(m[1]) : NaN;
    },
  };
}

// The id of a special token of the test model (e.g. '<|channel>').
export function tokenId(text) {
  const out = execFileSync(BIN, ['tokenize', '-m', MODEL, '--special', '--text', text]).toString();
  const ids = JSON.parse(out);
  if (ids.length !== 1) throw new Error(`${text} is not one token: ${out}`);
  return ids[0];
}

export async function waitFor(check, what, seconds = 30) {
  const until = Date.now() + seconds * 1000;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}
