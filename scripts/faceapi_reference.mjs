// SPDX-License-Identifier: MIT
// Reference descriptors from face-api itself, for checking scripts/convert_dlib_resnet.py.
//
// Computes @vladmandic/face-api's own 128-d face descriptors (FaceRecognitionNet.computeFaceDescriptor,
// tfjs CPU backend, pure JavaScript) for a few fixed synthetic 150x150 RGB chips given by integer
// formulas, and writes them with the formulas to tests/data/faceapi_reference.json (committed).
// scripts/check_dlib_resnet.py (and Rust tests) regenerate the chips byte-exactly from that file.
// scripts/setup.sh does not run this script.
//
// To rerun (Node 20; needs only the npm registry, no native download):
//   tmp=$(mktemp -d) && cd "$tmp" && echo '{"private":true}' > package.json &&
//   npm install --ignore-scripts --no-audit --no-fund --save-exact \
//     @vladmandic/face-api@1.7.15 @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0 &&
//   node REPO/scripts/faceapi_reference.mjs REPO/tests/data/faceapi_reference.json
// (run it from inside $tmp: it resolves the packages from the current directory's node_modules).
// face-api's node-wasm build requires @tensorflow/tfjs and @tensorflow/tfjs-backend-wasm; the
// descriptors are computed on the 'cpu' backend (the 'wasm' backend's result is reported too).

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const PINNED = {
  '@vladmandic/face-api': '1.7.15',
  '@tensorflow/tfjs': '4.22.0',
  '@tensorflow/tfjs-backend-wasm': '4.22.0',
};
const SIZE = 150;

// ---- chips -------------------------------------------------------------------------------------
// Every chip: 150x150 pixels, 3 channels RGB, HWC, one byte per value; x = column, y = row,
// c = channel (0 R, 1 G, 2 B); byte index i = (y*150 + x)*3 + c. All arithmetic is on
// non-negative integers; "/" is floor division, "%" the non-negative remainder.
const FORMULAS = {
  linear: 'v = (a*x + b*y + e*c + d) % 256',
  triangle: 'P = period[c]/2; t = (fx[c]*x + fy[c]*y + phase[c]) % period[c]; v = (|t - P| * 255) / P (period even)',
  checker: 'v = ((x/cell + y/cell) % 2 == 0) ? light[c] : dark[c]',
  lcg: 's = seed; for i = 0, 1, ..., 150*150*3-1 in byte order: s = (mul*s + add) % 2^32; byte[i] = s / 2^24 (the top 8 bits)',
};

const CHIPS = [
  { name: 'gradient', kind: 'linear', params: { a: 1, b: 1, e: 37, d: 10 } },
  { name: 'waves', kind: 'triangle', params: { fx: [3, 2, 5], fy: [1, 4, 2], phase: [0, 17, 40], period: [64, 90, 50] } },
  { name: 'checkerboard', kind: 'checker', params: { cell: 15, light: [230, 210, 190], dark: [30, 45, 60] } },
  { name: 'noise', kind: 'lcg', params: { seed: 12345, mul: 1664525, add: 1013904223 } },
];

function makeChip(kind, p) {
  const out = new Uint8Array(SIZE * SIZE * 3);
  let s = p.seed >>> 0;
  for (let y = 0; y < SIZE; y += 1) {
    for (let x = 0; x < SIZE; x += 1) {
      for (let c = 0; c < 3; c += 1) {
        const i = (y * SIZE + x) * 3 + c;
        let v;
        if (kind === 'linear') {
          v = (p.a * x + p.b * y + p.e * c + p.d) % 256;
        } else if (kind === 'triangle') {
          const half = p.period[c] / 2;
          const t = (p.fx[c] * x + p.fy[c] * y + p.phase[c]) % p.period[c];
          v = Math.floor((Math.abs(t - half) * 255) / half);
        } else if (kind === 'checker') {
          v = ((Math.floor(x / p.cell) + Math.floor(y / p.cell)) % 2 === 0) ? p.light[c] : p.dark[c];
        } else if (kind === 'lcg') {
          s = (Math.imul(p.mul, s) + p.add) >>> 0; // exact: (mul*s + add) mod 2^32
          v = s >>> 24;
        } else {
          throw new Error(`unknown chip kind ${kind}`);
        }
        if (!Number.isInteger(v) || v < 0 || v > 255) throw new Error(`chip ${kind}: value ${v} at ${i}`);
        out[i] = v;
      }
    }
  }
  return out;
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

// ---- face-api ----------------------------------------------------------------------------------
async function main() {
  const outPath = process.argv[2];
  if (!outPath) throw new Error('usage: node faceapi_reference.mjs OUT.json (run where the pinned packages are installed)');
  const require = createRequire(path.join(process.cwd(), 'noop.js'));
  const versions = {};
  for (const [pkg, want] of Object.entries(PINNED)) {
    const got = require(`${pkg}/package.json`).version;
    if (got !== want) throw new Error(`${pkg} is ${got}, this script is pinned to ${want}`);
    versions[pkg] = got;
  }
  const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
  const { tf } = faceapi;
  versions['@tensorflow/tfjs-core (as loaded)'] = tf.version_core;
  versions.node = process.versions.node;

  const modelDir = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
  const weightFiles = {};
  for (const f of ['face_recognition_model-weights_manifest.json', 'face_recognition_model.bin']) {
    weightFiles[f] = sha256(readFileSync(path.join(modelDir, f)));
  }

  const run = async (backend) => {
    if (!(await tf.setBackend(backend))) throw new Error(`tfjs backend ${backend} is unavailable`);
    await tf.ready();
    const net = new faceapi.FaceRecognitionNet();
    await net.loadFromDisk(modelDir);
    const res = [];
    for (const chip of CHIPS) {
      const bytes = makeChip(chip.kind, chip.params);
      const t = tf.tensor3d(bytes, [SIZE, SIZE, 3], 'int32');
      const d = await net.computeFaceDescriptor(t); // what face-api does on a 150x150 chip
      t.dispose();
      if (!(d instanceof Float32Array) || d.length !== 128) throw new Error('unexpected descriptor');
      res.push(d);
    }
    net.dispose();
    return res;
  };

  const cpu = await run('cpu');
  let wasmDiff = null;
  try {
    const wasm = await run('wasm');
    wasmDiff = Math.max(...cpu.map((d, k) => Math.max(...d.map((v, j) => Math.abs(v - wasm[k][j])))));
  } catch (e) {
    console.warn(`wasm backend not compared: ${e.message}`);
  }

  const doc = {
    about: 'face-api descriptors (FaceRecognitionNet.computeFaceDescriptor) of synthetic 150x150 chips; written by scripts/faceapi_reference.mjs',
    packages: versions,
    backend: 'cpu',
    max_abs_diff_wasm_backend: wasmDiff,
    weight_files_sha256: weightFiles,
    chip: {
      width: SIZE,
      height: SIZE,
      channels: 3,
      layout: 'HWC',
      color: 'RGB',
      dtype: 'uint8',
      index: 'i = (y*150 + x)*3 + c; x = column 0..149, y = row 0..149, c = 0 R, 1 G, 2 B',
      arithmetic: 'non-negative integers; "/" is floor division, "%" the non-negative remainder; |.| absolute value',
      fed_as: 'tf.tensor3d(bytes, [150, 150, 3], "int32"); face-api casts to float32 and normalises (x - [122.782, 117.001, 104.298]) / 255',
    },
    chips: CHIPS.map((chip, k) => ({
      name: chip.name,
      kind: chip.kind,
      params: chip.params,
      formula: FORMULAS[chip.kind],
      sha256: sha256(makeChip(chip.kind, chip.params)),
      descriptor: Array.from(cpu[k]),
    })),
  };
  const tmp = `${outPath}.part`;
  writeFileSync(tmp, `${JSON.stringify(doc, null, 1)}\n`);
  renameSync(tmp, outPath);
  console.log(`faceapi_reference: wrote ${outPath} (${CHIPS.length} chips; cpu vs wasm max abs diff ${wasmDiff})`);
}

main().catch((e) => { console.error(`faceapi_reference: error: ${e.stack || e}`); process.exit(1); });
