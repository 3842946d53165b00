"""What each piece of the fused MLM output layer is worth, op by op (issue 14).

Times MXNet's CPU operators on the masked-LM output layer's shapes at the
chapter's settings (about 2,000 real prediction slots per batch of 256,
vocabulary 20,256, hidden 128), each in the way the chapter's autograd path
runs it and in the way ``d2l_nli/fused_mlm.py`` does, and prints one JSON
line and a table. Run alone on a quiet machine:

    .venv/bin/python benchmarks/mlm_levers.py

bf16 is tried only where the CPU reports AVX512-BF16 (``/proc/cpuinfo``).
MXNet 1.9.1 has a bf16 FullyConnected but no bf16 ``dot`` (and bf16
``batch_dot`` crashed here), so only the logits and the input gradient
could use it, for about 5% of a step and bf16-rounded logits: the fused
layer stays in float32.
"""
import json
import time

import d2l_nli  # noqa: F401  (the package's thread defaults)

# isort: split
import mxnet as mx
from mxnet import np, npx

npx.set_np()  # the chapter's NumPy mode

N, H, V = 2048, 128, 20256


def timed(f, n=10):
    f()
    mx.nd.waitall()
    start = time.perf_counter()
    for _ in range(n):
        f()
    mx.nd.waitall()
    return (time.perf_counter() - start) / n * 1000


def cpu_flags():
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('flags'):
                return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def main():
    hidden, weight, bias = (np.random.normal(size=s) for s in ((N, H), (V, H), (V,)))
    buf = np.random.normal(size=(N, V))
    nd = {k: a.as_nd_ndarray() for k, a in
          (('h', hidden), ('w', weight), ('b', bias), ('buf', buf))}
    ha = mx.nd.concat(nd['h'], mx.nd.ones((N, 1)), dim=1)
    wt = mx.nd.transpose(nd['w'])
    rows = [
        ('fresh (N, V) buffer: np.zeros', lambda: np.zeros((N, V))),
        ('logits, new output', lambda: mx.nd.FullyConnected(nd['h'], nd['w'], nd['b'],
                                                            num_hidden=V)),
        ('logits, into a reused buffer (ours)', lambda: mx.nd.FullyConnected(
            nd['h'], nd['w'], nd['b'], num_hidden=V, out=nd['buf'])),
        ('softmax, new output', lambda: mx.nd.softmax(nd['buf'])),
        ('softmax, in place (ours)', lambda: mx.nd.softmax(nd['buf'], out=nd['buf'])),
        ('log_softmax, new output (chapter)', lambda: mx.nd.log_softmax(nd['buf'])),
        ('dW, dot(transpose_a)', lambda: mx.nd.dot(nd['buf'], nd['h'], transpose_a=True)),
        ('dW and db, linalg.gemm2 on [h, 1]', lambda: mx.nd.linalg.gemm2(
            nd['buf'], ha, transpose_a=True)),
        ('dW and db, linalg.gemm2 [h, 1]^T g, then transposed (ours)', lambda: mx.nd.transpose(
            mx.nd.linalg.gemm2(ha, nd['buf'], transpose_a=True))),
        ('db alone, sum over rows', lambda: mx.nd.sum(nd['buf'], axis=0)),
        ('dh, np.dot', lambda: np.dot(buf, weight)),
        ('dh, FullyConnected with W^T (ours)', lambda: mx.nd.FullyConnected(
            nd['buf'], wt, no_bias=True, num_hidden=H)),
    ]
    results = {name: timed(f) for name, f in rows}
    if 'avx512_bf16' in cpu_flags():
        from mxnet.contrib.amp.amp import bfloat16
        hb, wb, bb = (mx.nd.amp_cast(nd[k], dtype=bfloat16) for k in ('h', 'w', 'b'))
        out_bf16 = mx.nd.amp_cast(nd['buf'], dtype=bfloat16)
        results['logits in bf16, into a reused buffer'] = timed(
            lambda: mx.nd.FullyConnected(hb, wb, bb, num_hidden=V, out=out_bf16))
        results['cast bf16 -> fp32 of the logits'] = timed(
            lambda: mx.nd.amp_cast(out_bf16, dtype='float32', out=nd['buf']))
    else:
        results['bf16'] = 'not measured: this CPU has no AVX512-BF16'
    print(json.dumps({'shapes': {'N': N, 'H': H, 'V': V}, 'ms': results}))
    print('\n| operation (N=2,048, H=128, V=20,256) | ms |\n|---|---|')
    for name, ms in results.items():
        print(f'| {name} | {ms:.1f} |' if isinstance(ms, float) else f'| {name} | {ms} |')


if __name__ == '__main__':
    main()
