#!/usr/bin/env python3
"""Official-code counterpart of benchmarks/Svg.ML.Benchmarks (same figure names, same JSON fields, one line each).

UNTESTED HERE: the Svg.ML development machine has no PyTorch. Written against shiml20/SVG (models/models_SVG.py,
rectified_flow/rectified_flow.py, autoencoder/ldm/modules/diffusionmodules/model.py) and facebookresearch/dinov3
(dinov3/hub/backbones.py). Needs torch (CPU build; use 2.10 = the libtorch of TorchSharp 0.107 for a like-for-like
comparison), timm, tqdm, einops, numpy.

  python benchmarks/official_pytorch_bench.py --svg ~/src/SVG --dinov3 ~/src/dinov3 --threads 2 [--mkldnn off] > official.jsonl

Join with the Svg.ML output on "name" (see benchmarks/README.md). Random weights; timing only.
"""
import argparse, contextlib, gc, json, os, statistics, sys, time

import torch

p = argparse.ArgumentParser()
p.add_argument("--svg", required=True, help="checkout of shiml20/SVG")
p.add_argument("--dinov3", required=True, help="checkout of facebookresearch/dinov3")
p.add_argument("--threads", type=int, default=None)
p.add_argument("--only", default=None, help="comma-separated figure names or prefixes ending in *")
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--min-iters", type=int, default=5)
p.add_argument("--min-seconds", type=float, default=10.0)
p.add_argument("--heavy-seconds", type=float, default=5.0)
p.add_argument("--heavy-iters", type=int, default=2)
p.add_argument("--sample-iters", type=int, default=1)
p.add_argument("--mkldnn", choices=["on", "off"], default="on",
               help="off = torch.backends.mkldnn.enabled=False (what Svg.ML does when its oneDNN conv self-test fails)")
args = p.parse_args()

if args.threads:
    torch.set_num_threads(args.threads)
torch.backends.mkldnn.enabled = args.mkldnn == "on"
sys.path[:0] = [args.dinov3, args.svg, os.path.join(args.svg, "autoencoder")]  # dinov3 first: an SVG checkout may hold a dinov3/ clone
from models.models_SVG import DiT  # noqa: E402
from rectified_flow.rectified_flow import RectifiedFlow  # noqa: E402
from ldm.modules.diffusionmodules.model import Decoder  # noqa: E402
from dinov3.hub.backbones import dinov3_vits16plus  # noqa: E402

print(f"official PyTorch benchmarks: torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
      f"mkldnn {torch.backends.mkldnn.enabled}", file=sys.stderr)


def selected(name):
    if not args.only:
        return True
    return any(name.startswith(o[:-1]) if o.endswith("*") else name == o for o in args.only.split(","))


def measure(label, fn, warm_fn=None, heavy_iters=None):
    """Same rule as Svg.ML's Timing.Run: warm-up (stop after one if it exceeds --heavy-seconds), then
    >= --min-iters AND >= --min-seconds, or exactly heavy_iters timed iterations for a heavy figure."""
    heavy_iters = heavy_iters or args.heavy_iters
    warm, heavy, sys0 = 0, False, 0.0
    gc.collect()
    with contextlib.suppress(OSError):
        open("/proc/self/clear_refs", "w").write("5")  # reset the peak-RSS mark (Linux)
    while warm < args.warmup:
        t0 = time.perf_counter(); (warm_fn or fn)(); s = time.perf_counter() - t0
        warm += 1
        print(f"  {label}: warm-up {warm} {s:.3f} s", file=sys.stderr)
        if s > args.heavy_seconds:
            heavy = True
            break
    secs, cpu = [], []
    while (len(secs) < heavy_iters) if heavy else (len(secs) < args.min_iters or sum(secs) < args.min_seconds):
        r0, c0, t0 = os.times(), time.process_time(), time.perf_counter(); fn(); s = time.perf_counter() - t0
        secs.append(s); cpu.append(time.process_time() - c0); sys0 += os.times().system - r0.system
        print(f"  {label}: iteration {len(secs)} {s:.3f} s", file=sys.stderr)
        if not heavy and s > args.heavy_seconds and len(secs) >= heavy_iters:
            heavy = True
    peak = None
    with contextlib.suppress(OSError, StopIteration):
        peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
    return warm, secs, heavy, cpu, sys0 / sum(cpu) if sum(cpu) else 0.0, peak


def emit(name, model, batch, m, units, unit, params, **extra):
    warm, secs, heavy, cpu, sys_share, peak = m
    med = statistics.median(secs)
    rec = dict(name=name, model=model, batch=batch, dtype="fp32", device="cpu", threads=torch.get_num_threads(),
               warmup=warm, iterations=len(secs), median_s=med, min_s=min(secs), throughput=units / med,
               throughput_unit=unit, params=params, heavy_rule=heavy, iteration_s=secs,
               cpu_s_median=statistics.median(cpu), cpu_s=cpu, cpu_sys_share=sys_share,
               peak_rss_mib=round(peak) if peak is not None else None,
               load_average_1min=os.getloadavg()[0], implementation="official-pytorch", torch=torch.__version__,
               mkldnn=torch.backends.mkldnn.enabled)
    rec.update(extra)
    print(json.dumps(rec), flush=True)


def nparams(m):
    return sum(p.numel() for p in m.parameters())


def dit(hidden, depth, heads):
    return DiT(input_size=16, patch_size=1, in_channels=392, hidden_size=hidden, depth=depth, num_heads=heads,
               mlp_ratio=4.0, class_dropout_prob=0.1, num_classes=1000, learn_sigma=True, qk_norm=True)


SIZES = {"s": (384, 12, 6), "b": (768, 12, 12), "xl": (1152, 28, 16)}


def dit_inputs(b):
    torch.manual_seed(2)
    return torch.randn(b, 256, 392), torch.rand(b), torch.randint(0, 1000, (b,))


# fp32 matmul
if selected("matmul_fp32_2048"):
    torch.manual_seed(1)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    emit("matmul_fp32_2048", "mm 2048x2048x2048", 1, measure("matmul", lambda: torch.mm(a, b)), 2 * 2048 ** 3 / 1e9, "GFLOP/s", 0)

# DINOv3 ViT-S+/16 forward_features at 256x256
names = [f"dinov3_vits16plus_forward_256_b{b}" for b in (1, 8, 32)]
if any(map(selected, names)):
    torch.manual_seed(1)
    enc = dinov3_vits16plus(pretrained=False).eval()
    for b, name in zip((1, 8, 32), names):
        if selected(name):
            x = torch.randn(b, 3, 256, 256)
            with torch.no_grad():
                m = measure(name, lambda: enc.forward_features(x))
            emit(name, "DINOv3 ViT-S+/16 @256", b, m, b, "images/s", nparams(enc), image_size=256)
    del enc

# SVG DiT forward
for key, (h, d, nh) in SIZES.items():
    names = {b: f"dit_{key}_forward_b{b}" for b in (1, 8)}
    if not any(map(selected, names.values())):
        continue
    torch.manual_seed(1)
    model = dit(h, d, nh).eval()
    for b, name in names.items():
        if selected(name):
            x, t, y = dit_inputs(b)
            with torch.no_grad():
                m = measure(name, lambda: model(x, t, y))
            emit(name, f"SVG DiT-{key.upper()}", b, m, b, "images/s", nparams(model), tokens=256,
                 tokens_per_s=b * 256 / statistics.median(m[1]))
    del model

# SVG DiT training step: zero_grad, rectified-flow loss (shift 0.4), backward, AdamW lr 1e-4 wd 0
for key in ("s", "b"):
    for b in (8, 32):
        name = f"dit_{key}_train_step_b{b}"
        if not selected(name):
            continue
        torch.manual_seed(1)
        model = dit(*SIZES[key]).train()
        rf = RectifiedFlow(model)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), weight_decay=0)
        x, _, y = dit_inputs(b)

        def step():
            opt.zero_grad()
            rf(x, y, timestep_shift=0.4)["loss"].backward()
            opt.step()

        m = measure(name, step)
        emit(name, f"SVG DiT-{key.upper()}", b, m, 1, "steps/s", nparams(model),
             images_per_s=b / statistics.median(m[1]), optimizer="AdamW lr 1e-4 betas (0.9,0.999) wd 0")
        del model, rf, opt

# Released LDM decoder forward
names = {b: f"ldm_decoder_forward_b{b}" for b in (1, 4)}
if any(map(selected, names.values())):
    torch.manual_seed(1)
    dec = Decoder(ch=128, out_ch=3, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, attn_resolutions=[16], dropout=0.0,
                  in_channels=3, resolution=256, z_channels=392).eval()
    for b, name in names.items():
        if selected(name):
            torch.manual_seed(2)
            z = torch.randn(b, 392, 16, 16)
            with torch.no_grad():
                m = measure(name, lambda: dec(z))
            emit(name, "LDM decoder (released config)", b, m, b, "images/s", nparams(dec), image_size=256)
    del dec

# DiT-B 25-step Euler sampling, CFG 4 constant, shift 0.15 (official: two forwards of batch B per step)
name = "dit_b_sample_euler25_cfg4_b4"
if selected(name):
    torch.manual_seed(1)
    model = dit(*SIZES["b"]).eval()
    rf = RectifiedFlow(model)
    z, _, y = dit_inputs(4)
    y_null = torch.full_like(y, 1000)

    def sample(steps):
        with contextlib.redirect_stdout(sys.stderr):  # sample() prints "Using euler sampler"
            rf.sample(z, y, null_cond=y_null, sample_steps=steps, cfg=4.0, mode="euler", timestep_shift=0.15,
                      cfg_mode="constant")

    m = measure(name, lambda: sample(25), warm_fn=lambda: sample(1), heavy_iters=args.sample_iters)
    emit(name, "SVG DiT-B", 4, m, 4, "images/s", nparams(model), steps=25,
         sampler="euler, cfg 4 constant, shift 0.15; official: cond and uncond as two forwards of batch B",
         steps_per_s=25 / statistics.median(m[1]), warmup_kind="1-step sampling run")
