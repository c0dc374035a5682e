#!/usr/bin/env python3
"""Writes the small checkpoint fixtures of Svg.ML.Tests/Checkpoints (no PyTorch needed).

Run from anywhere:  python3 make_fixtures.py   (Python >= 3.8, standard library only; output is deterministic)

The files follow the real formats byte for byte where it matters:

* torch.save zip archives (PyTorch >= 1.6): `<name>/data.pkl` (pickle protocol 2), `<name>/byteorder`
  ("little"), `<name>/data/<key>` (raw little-endian storages, stored uncompressed, data aligned to 64 bytes with
  an "FB" extra field like PyTorch's writer), `<name>/version`. Stub modules named `torch` and `torch._utils` are
  installed in sys.modules so that pickle writes exactly the GLOBAL opcodes torch writes
  (`torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`, `collections.OrderedDict`, ...) and tensors reduce like
  `torch.Tensor.__reduce_ex__`: `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict())`
  with the persistent id `('storage', torch.<Type>Storage, key, 'cpu', numel)` (torch/serialization.py `_save`).
* safetensors files (8-byte header length, JSON header, data), as written by the safetensors library.

Every fixture `X` has `X.expected.safetensors` with the tensors a correct loader returns (official keys, logical
contiguous values; views and transposed storages resolved) and `__metadata__` holding further expectations.
Values come from a fixed linear congruential generator, so reruns give identical files.
"""
import argparse
import collections
import copyreg
import datetime
import io
import json
import math
import os
import pathlib
import pickle
import struct
import sys
import types
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------------------------------------------
# Stub modules: pickle looks globals up by module and name, so these make it write torch's, omegaconf's, numpy's
# and Lightning's names without those packages installed. Nothing here is ever called when loading.
# ---------------------------------------------------------------------------------------------------------------


def stub_module(name):
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, mod)
    return mod


def stub_function(mod, name):
    def f(*args):
        raise RuntimeError("stub " + name)
    f.__module__ = mod.__name__
    f.__qualname__ = f.__name__ = name
    setattr(mod, name, f)
    return f


def stub_class(mod, name, bases=(object,)):
    cls = type(name, bases, {"__module__": mod.__name__})
    cls.__qualname__ = name
    setattr(mod, name, cls)
    return cls


torch = stub_module("torch")
torch_utils = stub_module("torch._utils")
rebuild_tensor_v2 = stub_function(torch_utils, "_rebuild_tensor_v2")
STORAGE = {dt: stub_class(torch, name) for dt, name in [
    ("f32", "FloatStorage"), ("bf16", "BFloat16Storage"), ("i64", "LongStorage"), ("f16", "HalfStorage")]}

for m in ["omegaconf", "omegaconf.dictconfig", "omegaconf.listconfig", "omegaconf.base", "omegaconf.nodes",
          "numpy", "numpy.core", "numpy.core.multiarray", "lightning_fabric", "lightning_fabric.utilities",
          "lightning_fabric.utilities.data"]:
    stub_module(m)
DictConfig = stub_class(sys.modules["omegaconf.dictconfig"], "DictConfig")
ListConfig = stub_class(sys.modules["omegaconf.listconfig"], "ListConfig")
ContainerMetadata = stub_class(sys.modules["omegaconf.base"], "ContainerMetadata")
AnyNode = stub_class(sys.modules["omegaconf.nodes"], "AnyNode")
AttributeDict = stub_class(sys.modules["lightning_fabric.utilities.data"], "AttributeDict", (dict,))
np_scalar = stub_function(sys.modules["numpy.core.multiarray"], "scalar")
np_dtype = stub_class(sys.modules["numpy"], "dtype")


class NumpyDType:
    def __reduce__(self):
        return (np_dtype, ("f8", False, True), (3, "<", None, None, None, -1, -1, 0))


class NumpyFloat64:
    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return (np_scalar, (NumpyDType(), struct.pack("<d", self.value)))


class Reduce:
    """An object that pickles as `func(*args)` (used for the malicious fixtures)."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


# ---------------------------------------------------------------------------------------------------------------
# Tensors
# ---------------------------------------------------------------------------------------------------------------

FMT = {"f32": "f", "i64": "q", "f16": "e"}
SIZE = {"f32": 4, "bf16": 2, "i64": 8, "f16": 2}
ST_DTYPE = {"f32": "F32", "bf16": "BF16", "i64": "I64", "f16": "F16"}


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bf16_bits(x):
    """Round-to-nearest-even fp32 -> bf16, as torch's .to(torch.bfloat16)."""
    b = struct.unpack("<I", struct.pack("<f", x))[0]
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF


def bf16_value(bits):
    return struct.unpack("<f", struct.pack("<I", bits << 16))[0]


def pack(values, dtype):
    if dtype == "bf16":
        return struct.pack("<%dH" % len(values), *[bf16_bits(v) for v in values])
    return struct.pack("<%d%s" % (len(values), FMT[dtype]), *values)


class Storage:
    def __init__(self, values, dtype="f32"):
        self.values, self.dtype = list(values), dtype

    def nbytes(self):
        return len(self.values) * SIZE[self.dtype]


class Tensor:
    """A strided view into a Storage, pickled exactly like torch.Tensor."""

    def __init__(self, storage, shape, stride=None, offset=0):
        self.storage, self.shape, self.offset = storage, tuple(shape), offset
        if stride is None:
            stride, acc = [], 1
            for d in reversed(self.shape):
                stride.insert(0, acc)
                acc *= d
        self.stride = tuple(stride)

    def __reduce_ex__(self, protocol):
        return (rebuild_tensor_v2, (self.storage, self.offset, self.shape, self.stride, False, collections.OrderedDict()))

    def logical(self):
        """The values in row-major order of the view (what a loader must return)."""
        out = []

        def rec(dim, base):
            if dim == len(self.shape):
                out.append(self.storage.values[base])
                return
            for i in range(self.shape[dim]):
                rec(dim + 1, base + i * self.stride[dim])
        rec(0, self.offset)
        if self.storage.dtype == "bf16":
            out = [bf16_value(bf16_bits(v)) for v in out]
        return out


class Rng:
    """Deterministic values: a 64-bit LCG seeded from the key, mapped to [-1, 1) and rounded to fp32."""

    def __init__(self, seed):
        self.state = (zlib.crc32(seed.encode()) * 6364136223846793005 + 1442695040888963407) % 2 ** 64

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % 2 ** 64
        return f32(((self.state >> 11) / 2 ** 53) * 2 - 1)


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def rand(key, shape, scale=1.0, offset=0.0):
    r = Rng(key)
    return Tensor(Storage([f32(offset + scale * r.next()) for _ in range(numel(shape))]), shape)


def const(shape, values, dtype="f32"):
    return Tensor(Storage(values, dtype), shape)


# ---------------------------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------------------------


class TorchPickler(pickle.Pickler):
    def __init__(self, f, storages):
        super().__init__(f, protocol=2)
        self.storages, self.keys = storages, {}

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            # Keys number the storages of this file in first-use order, like torch.save's id_map.
            if id(obj) not in self.keys:
                self.keys[id(obj)] = str(len(self.storages))
                self.storages.append(obj)
            return ("storage", STORAGE[obj.dtype], self.keys[id(obj)], "cpu", len(obj.values))
        return None


def write_record(zf, name, data):
    """A stored zip entry whose data starts on a 64-byte boundary (PyTorch pads the local header's extra field)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    header = 30 + len(name.encode()) + 4
    pad = (-(zf.fp.tell() + header)) % 64
    info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
    zf.writestr(info, data)


def torch_save(obj, path, archive="archive", pickle_bytes=None):
    storages = []
    if pickle_bytes is None:
        buf = io.BytesIO()
        TorchPickler(buf, storages).dump(obj)
        pickle_bytes = buf.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        write_record(zf, archive + "/data.pkl", pickle_bytes)
        write_record(zf, archive + "/byteorder", b"little")
        for key, s in enumerate(storages):
            write_record(zf, archive + "/data/%d" % key, pack(s.values, s.dtype))
        write_record(zf, archive + "/version", b"3\n")


def save_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        data = pack(t.logical(), t.storage.dtype)
        header[name] = {"dtype": ST_DTYPE[t.storage.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def state_dict(items, metadata_version=True):
    """An OrderedDict like nn.Module.state_dict(), including its `_metadata` attribute."""
    sd = collections.OrderedDict(items)
    if metadata_version:
        sd._metadata = collections.OrderedDict([("", {"version": 1})])
    return sd


# ---------------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------------

DIM, HEADS, DEPTH, HIDDEN, PATCH, STORAGE_TOKENS = 64, 1, 2, 32, 4, 4
PERIODS = [100 ** (2 * i / 32) for i in range(16)]  # head 64 -> 16 periods; stored in bf16 like the released .pth


def dinov3_official(prefix=""):
    sd = []

    def add(k, t):
        sd.append((prefix + k, t))
    add("cls_token", rand(prefix + "cls_token", (1, 1, DIM), 0.5))
    add("storage_tokens", rand(prefix + "storage_tokens", (1, STORAGE_TOKENS, DIM), 0.5))
    add("mask_token", rand(prefix + "mask_token", (1, DIM), 0.5))
    add("patch_embed.proj.weight", rand(prefix + "patch", (DIM, 3, PATCH, PATCH), 0.2))
    add("patch_embed.proj.bias", rand(prefix + "patch.b", (DIM,), 0.1))
    add("rope_embed.periods", const((16,), PERIODS, "bf16"))
    for i in range(DEPTH):
        b = "blocks.%d." % i
        add(b + "norm1.weight", rand(prefix + b + "n1w", (DIM,), 0.2, 1.0))
        add(b + "norm1.bias", rand(prefix + b + "n1b", (DIM,), 0.1))
        add(b + "attn.qkv.weight", rand(prefix + b + "qkv", (3 * DIM, DIM), 0.125))
        add(b + "attn.qkv.bias", rand(prefix + b + "qkvb", (3 * DIM,), 0.1))  # the k third is non-zero, as released
        add(b + "attn.qkv.bias_mask", const((3 * DIM,), [1.0] * DIM + [0.0] * DIM + [1.0] * DIM))
        add(b + "attn.proj.weight", rand(prefix + b + "proj", (DIM, DIM), 0.125))
        add(b + "attn.proj.bias", rand(prefix + b + "projb", (DIM,), 0.1))
        add(b + "ls1.gamma", rand(prefix + b + "ls1", (DIM,), 0.4, 0.5))
        add(b + "norm2.weight", rand(prefix + b + "n2w", (DIM,), 0.2, 1.0))
        add(b + "norm2.bias", rand(prefix + b + "n2b", (DIM,), 0.1))
        add(b + "mlp.w1.weight", rand(prefix + b + "w1", (HIDDEN, DIM), 0.125))
        add(b + "mlp.w1.bias", rand(prefix + b + "w1b", (HIDDEN,), 0.1))
        add(b + "mlp.w2.weight", rand(prefix + b + "w2", (HIDDEN, DIM), 0.125))
        add(b + "mlp.w2.bias", rand(prefix + b + "w2b", (HIDDEN,), 0.1))
        add(b + "mlp.w3.weight", rand(prefix + b + "w3", (DIM, HIDDEN), 0.17))
        add(b + "mlp.w3.bias", rand(prefix + b + "w3b", (DIM,), 0.1))
        add(b + "ls2.gamma", rand(prefix + b + "ls2", (DIM,), 0.4, 0.5))
    add("norm.weight", rand(prefix + "nw", (DIM,), 0.2, 1.0))
    add("norm.bias", rand(prefix + "nb", (DIM,), 0.1))
    return sd


def slice_rows(t, start, count):
    """Rows [start, start+count) of a 2-D or 1-D tensor, as a new contiguous tensor (like torch.chunk + save)."""
    vals = t.logical()
    row = numel(t.shape[1:])
    return Tensor(Storage(vals[start * row:(start + count) * row]), (count,) + t.shape[1:])


def dinov3_to_hf(official):
    """transformers convert_dinov3_vit_to_hf.py: split qkv, rename, drop bias_mask / k bias / periods, unsqueeze mask_token."""
    hf = []
    for key, t in official:
        if key == "rope_embed.periods" or key.endswith("bias_mask"):
            continue
        if key.endswith("attn.qkv.weight") or key.endswith("attn.qkv.bias"):
            i = key.split(".")[1]
            suffix = key.rsplit(".", 1)[1]
            for j, name in enumerate(["q_proj", "k_proj", "v_proj"]):
                if name == "k_proj" and suffix == "bias":
                    continue
                hf.append(("layer.%s.attention.%s.%s" % (i, name, suffix), slice_rows(t, j * DIM, DIM)))
            continue
        if key == "mask_token":
            hf.append(("embeddings.mask_token", Tensor(t.storage, (1, 1, DIM))))
            continue
        new = key
        for a, b in [("cls_token", "embeddings.cls_token"), ("storage_tokens", "embeddings.register_tokens"),
                     ("patch_embed.proj", "embeddings.patch_embeddings")]:
            if new.startswith(a):
                new = b + new[len(a):]
        if new.startswith("blocks."):
            parts = new.split(".")
            i, rest = parts[1], ".".join(parts[2:])
            rest = rest.replace("attn.proj", "attention.o_proj").replace("ls1.gamma", "layer_scale1.lambda1") \
                       .replace("ls2.gamma", "layer_scale2.lambda1").replace("mlp.w1", "mlp.gate_proj") \
                       .replace("mlp.w2", "mlp.up_proj").replace("mlp.w3", "mlp.down_proj")
            new = "layer.%s.%s" % (i, rest)
        hf.append((new, t))
    return hf


def expected_official(official, zero_k_bias=False):
    out = collections.OrderedDict()
    for key, t in official:
        if zero_k_bias and key.endswith("attn.qkv.bias"):
            vals = t.logical()
            vals[DIM:2 * DIM] = [0.0] * DIM
            t = Tensor(Storage(vals), t.shape)
        if key.endswith("rope_embed.periods"):
            t = Tensor(Storage(t.logical()), t.shape)  # widened to fp32, value kept
        out[key] = t
    return out


def dit(prefix, hidden=8, channels=6, tokens=4, classes=3):
    k = lambda name: prefix + name
    items = [
        ("pos_embed", rand(k("pos"), (1, tokens, hidden))),
        ("t_embedder.mlp.0.weight", rand(k("t0"), (hidden, 16), 0.25)),
        ("t_embedder.mlp.0.bias", rand(k("t0b"), (hidden,), 0.1)),
        ("t_embedder.mlp.2.weight", rand(k("t2"), (hidden, hidden), 0.35)),
        ("t_embedder.mlp.2.bias", rand(k("t2b"), (hidden,), 0.1)),
        ("y_embedder.embedding_table.weight", rand(k("y"), (classes + 1, hidden), 0.5)),
        ("ln1.weight", rand(k("ln1"), (hidden, channels), 0.4)),
        ("ln1.bias", rand(k("ln1b"), (hidden,), 0.1)),
        ("blocks.0.attn.qkv.weight", rand(k("qkv"), (3 * hidden, hidden), 0.35)),
        ("blocks.0.attn.qkv.bias", rand(k("qkvb"), (3 * hidden,), 0.1)),
        ("blocks.0.attn.q_norm.weight", rand(k("qn"), (hidden // 2,), 0.2, 1.0)),
        ("blocks.0.attn.q_norm.bias", rand(k("qnb"), (hidden // 2,), 0.1)),
        ("blocks.0.attn.k_norm.weight", rand(k("kn"), (hidden // 2,), 0.2, 1.0)),
        ("blocks.0.attn.k_norm.bias", rand(k("knb"), (hidden // 2,), 0.1)),
        ("blocks.0.attn.proj.weight", rand(k("proj"), (hidden, hidden), 0.35)),
        ("blocks.0.attn.proj.bias", rand(k("projb"), (hidden,), 0.1)),
        ("blocks.0.mlp.fc1.weight", rand(k("fc1"), (4 * hidden, hidden), 0.35)),
        ("blocks.0.mlp.fc1.bias", rand(k("fc1b"), (4 * hidden,), 0.1)),
        ("blocks.0.mlp.fc2.weight", rand(k("fc2"), (hidden, 4 * hidden), 0.18)),
        ("blocks.0.mlp.fc2.bias", rand(k("fc2b"), (hidden,), 0.1)),
        ("blocks.0.adaLN_modulation.1.weight", rand(k("ada"), (6 * hidden, hidden), 0.35)),
        ("blocks.0.adaLN_modulation.1.bias", rand(k("adab"), (6 * hidden,), 0.1)),
        ("final_layer.linear.weight", rand(k("fl"), (2 * channels, hidden), 0.35)),
        ("final_layer.linear.bias", rand(k("flb"), (2 * channels,), 0.1)),
        ("final_layer.adaLN_modulation.1.weight", rand(k("fada"), (2 * hidden, hidden), 0.35)),
        ("final_layer.adaLN_modulation.1.bias", rand(k("fadab"), (2 * hidden,), 0.1)),
    ]
    return items


def omegaconf_dict(content):
    """A DictConfig as omegaconf pickles it: NEWOBJ + BUILD with _metadata (ContainerMetadata) and _content nodes."""
    meta = ContainerMetadata()
    meta.__dict__.update(ref_type=__import__("typing").Any, object_type=dict, optional=True, key=None,
                         flags={}, flags_root=False, resolver_cache=collections.defaultdict(dict),
                         key_type=__import__("typing").Any, element_type=__import__("typing").Any)
    cfg = DictConfig()
    nodes = {}
    for k, v in content.items():
        node = AnyNode()
        node.__dict__.update(_metadata=None, _parent=cfg, _val=v)
        nodes[k] = node
    cfg.__dict__.update(_metadata=meta, _parent=None, _flags_cache=None, _content=nodes)
    return cfg


def lightning_ckpt(state, callbacks_extra=None):
    opt_state = {0: {"step": const((), [100.0]), "exp_avg": rand("m0", (4,)), "exp_avg_sq": rand("v0", (4,), 0.1, 0.2)}}
    callbacks = {
        "ModelCheckpoint{'monitor': None, 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1}": {
            "monitor": None, "best_model_score": None, "best_model_path": "/ckpt/epoch=39.ckpt",
            "current_score": None, "dirpath": pathlib.PurePosixPath("/ckpt"), "best_k_models": {},
            "kth_best_model_path": "", "kth_value": const((), [float("inf")]), "last_model_path": "",
            "train_time": datetime.timedelta(hours=3, seconds=7)},
    }
    if callbacks_extra:
        callbacks.update(callbacks_extra)
    return {
        "epoch": 39,
        "global_step": 123456,
        "pytorch-lightning_version": "2.1.0",
        "state_dict": state,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 40, "completed": 39}},
                               "epoch_loop.batch_progress": {"total": {"ready": 3086, "completed": 3086}}}},
        "callbacks": callbacks,
        "optimizer_states": [{"state": opt_state, "param_groups": [{"lr": 1e-4, "betas": (0.5, 0.9), "eps": 1e-8,
                                                                   "weight_decay": 0.0, "amsgrad": False, "params": [0]}]}],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": AttributeDict(ddconfig=omegaconf_dict({"ch": 128, "z_channels": 392, "ch_mult": [1, 1, 2, 2, 4]}),
                                          embed_dim=32, learning_rate=NumpyFloat64(1e-4),
                                          args=argparse.Namespace(base="configs/svg.yaml", seed=23)),
        "hparams_type": DictConfig,
    }


def autoencoder_state():
    items = [
        ("decoder.conv_in.weight", rand("dci", (16, 12, 3, 3), 0.1)),
        ("decoder.conv_in.bias", rand("dcib", (16,), 0.1)),
        ("decoder.mid.block_1.norm1.weight", rand("dn1", (16,), 0.2, 1.0)),
        ("decoder.norm_out.bias", rand("dno", (16,), 0.1)),
        ("decoder.conv_out.weight", rand("dco", (3, 16, 3, 3), 0.1)),
        ("decoder.conv_out.bias", rand("dcob", (3,), 0.1)),
        ("extra_vit.class_token", rand("xct", (1, 1, 8))),
        ("extra_vit.conv_proj.weight", rand("xcp", (8, 3, 4, 4), 0.2)),
        ("extra_vit.encoder.pos_embedding", rand("xpe", (1, 5, 8))),
        ("extra_vit.encoder.layers.encoder_layer_0.self_attention.in_proj_weight", rand("xin", (24, 8), 0.35)),
    ]
    # A transposed (non-contiguous) tensor: heads.2.weight [4, 8] stored as the transpose of a [8, 4] storage.
    base = rand("xh2", (8, 4), 0.35)
    items.append(("extra_vit.heads.2.weight", Tensor(base.storage, (4, 8), stride=(1, 4))))
    items.append(("extra_vit.heads.2.bias", rand("xh2b", (4,), 0.1)))
    items += [("encoder." + k, t) for k, t in dinov3_official()[:6]]  # DINO globals incl. bf16 periods
    items.append(("mask_token", rand("mt", (1, 4, 1))))
    # norm_vit weight and bias: two views into one shared storage (offset 0 and 12).
    shared = Storage([f32(1.0 + 0.01 * i) for i in range(12)] + [f32(-0.02 * i) for i in range(12)])
    items.append(("norm_vit.weight", Tensor(shared, (12,))))
    items.append(("norm_vit.bias", Tensor(shared, (12,), offset=12)))
    loss = [
        ("loss.logvar", const((), [0.0])),
        ("loss.perceptual_loss.net.slice1.0.weight", rand("lp", (4, 3, 3, 3), 0.2, 0.0)),
        ("loss.discriminator.main.0.weight", rand("ld", (4, 3, 4, 4), 0.2)),
        ("loss.discriminator.main.2.num_batches_tracked", const((), [5001], "i64")),
    ]
    return items, loss


def main():
    out = HERE
    os.makedirs(out, exist_ok=True)

    def path(name):
        return os.path.join(out, name)

    # 1. DINOv3 official .pth: plain state dict, bf16 periods, archive named after the file like torch.save(path).
    official = dinov3_official()
    torch_save(state_dict(official), path("dinov3_tiny.pth"), archive="dinov3_tiny")
    save_safetensors(path("dinov3_tiny.pth.expected.safetensors"), expected_official(official),
                     {"periods_bf16": json.dumps([bf16_value(bf16_bits(p)) for p in PERIODS])})

    # 2. The same weights in the Hugging Face layout: a model folder (config.json + model.safetensors).
    hf_dir = path("dinov3_tiny_hf")
    os.makedirs(hf_dir, exist_ok=True)
    save_safetensors(os.path.join(hf_dir, "model.safetensors"), collections.OrderedDict(dinov3_to_hf(official)), {"format": "pt"})
    with open(os.path.join(hf_dir, "config.json"), "w") as f:
        json.dump({"architectures": ["DINOv3ViTModel"], "model_type": "dinov3_vit", "hidden_size": DIM,
                   "intermediate_size": HIDDEN, "num_attention_heads": HEADS, "num_hidden_layers": DEPTH,
                   "num_register_tokens": STORAGE_TOKENS, "patch_size": PATCH, "rope_theta": 100.0,
                   "use_gated_mlp": True, "hidden_act": "silu", "key_bias": False, "query_bias": True,
                   "value_bias": True, "layer_norm_eps": 1e-5}, f, indent=1)
    save_safetensors(path("dinov3_tiny_hf.expected.safetensors"),
                     collections.OrderedDict((k, t) for k, t in expected_official(official, zero_k_bias=True).items()
                                             if k != "rope_embed.periods"))

    # 3. SVG DiT {"ema": state_dict} (the released V1-SVG-XL-*.pt layout).
    ema = dit("ema")
    torch_save({"ema": state_dict(ema)}, path("svg_dit_ema.pt"))
    save_safetensors(path("svg_dit_ema.pt.expected.safetensors"), collections.OrderedDict(ema))

    # 4. A DiT training checkpoint {"model", "ema", "opt", "args"}: model and EMA differ; args is an argparse.Namespace.
    model = dit("model")
    opt = {"state": {0: {"step": const((), [7.0]), "exp_avg": rand("ea", (8,)), "exp_avg_sq": rand("eas", (8,), 0.1, 0.2)}},
           "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False,
                             "foreach": None, "maximize": False, "capturable": False, "differentiable": False,
                             "fused": None, "params": [0]}]}
    torch_save({"model": state_dict(model), "ema": state_dict(ema), "opt": opt,
                "args": argparse.Namespace(model="SVG-XL", image_size=256, global_batch_size=256, results_dir="results")},
               path("svg_dit_train.pt"))
    save_safetensors(path("svg_dit_train.pt.expected.safetensors"),
                     collections.OrderedDict([("ema." + k, t) for k, t in ema] + [("model." + k, t) for k, t in model]))

    # 5. SVG autoencoder Lightning .ckpt with non-weight entries (omegaconf, numpy, pathlib, datetime, Namespace).
    ae, loss = autoencoder_state()
    torch_save(lightning_ckpt(state_dict(ae + loss)), path("svg_autoencoder.ckpt"))
    expected = collections.OrderedDict((k, Tensor(Storage(t.logical()), t.shape)) for k, t in ae)
    save_safetensors(path("svg_autoencoder.ckpt.expected.safetensors"), expected,
                     {"dropped": json.dumps([k for k, _ in loss])})

    # 6. Feature statistics (dinov3_sp_stats.pt): a plain dict of two [1, 1, 392] fp32 tensors.
    r = Rng("stats")
    mean = [-0.131083, 0.010059, -0.161521] + [f32(0.2 * r.next()) for _ in range(389)]
    std = [0.392849, 0.375289, 0.370822] + [f32(0.3 + 0.1 * r.next()) for _ in range(389)]
    stats = {"dinov3_sp_mean": const((1, 1, 392), [f32(v) for v in mean]), "dinov3_sp_std": const((1, 1, 392), [f32(v) for v in std])}
    torch_save(stats, path("dinov3_sp_stats.pt"))
    save_safetensors(path("dinov3_sp_stats.pt.expected.safetensors"), stats)

    # 7. Malicious files. None of these must ever run; the loader must refuse them naming the global.
    marker = "/tmp/svgml_fixture_pwned"
    # (a) hand-written protocol-2 pickle: {"x": os.system("touch marker")} via GLOBAL + REDUCE.
    evil = (b"\x80\x02}q\x00(X\x01\x00\x00\x00xq\x01cos\nsystem\nq\x02X" + struct.pack("<I", len("touch " + marker))
            + ("touch " + marker).encode() + b"q\x03\x85q\x04Rq\x05u.")
    torch_save(None, path("malicious_os_system.pt"), pickle_bytes=evil)
    # (b) what pickle itself writes for os.system on Linux: GLOBAL posix.system, inside a state dict.
    torch_save(state_dict([("weight", rand("w", (2,))), ("x", Reduce(os.system, ("touch " + marker,)))]),
               path("malicious_posix_system.pt"))
    # (c) protocol 4: STACK_GLOBAL builtins.eval.
    torch_save(None, path("malicious_eval.pt"), pickle_bytes=pickle.dumps(Reduce(eval, ("__import__('os').system('touch %s')" % marker,)), protocol=4))
    # (d) protocol 0: INST os.system (no REDUCE at all).
    torch_save(None, path("malicious_inst.pt"), pickle_bytes=b"(S'touch " + marker.encode() + b"'\nios\nsystem\np0\n.")
    # (e) clean weights, but subprocess.Popen hidden in a non-weight entry of a Lightning checkpoint.
    torch_save(lightning_ckpt(state_dict(ae), {"Evil": {"state": Reduce(__import__("subprocess").Popen, (["touch", marker],))}}),
               path("malicious_lightning.ckpt"))
    print("fixtures written to", out)


if __name__ == "__main__":
    main()
