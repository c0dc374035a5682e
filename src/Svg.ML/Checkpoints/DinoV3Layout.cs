using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Checkpoints;

/// <summary>
/// The two key layouts of DINOv3 ViT weights and the conversion from the Hugging Face one (transformers
/// <c>dinov3_vit</c>, made by <c>convert_dinov3_vit_to_hf.py</c>) back to the official facebookresearch/dinov3
/// <c>state_dict</c> that this library's modules mirror.
/// </summary>
/// <remarks>
/// Hugging Face → official:
/// <list type="bullet">
/// <item><c>embeddings.cls_token</c> → <c>cls_token</c>; <c>embeddings.register_tokens</c> → <c>storage_tokens</c>;
/// <c>embeddings.mask_token</c> [1,1,C] → <c>mask_token</c> [1,C]; <c>embeddings.patch_embeddings</c> → <c>patch_embed.proj</c>.</item>
/// <item><c>layer.N.attention.{q,k,v}_proj.weight</c> → <c>blocks.N.attn.qkv.weight</c> (rows q|k|v). The biases likewise;
/// Hugging Face has no key bias (the official model masks it), so the k third is filled with zeros and
/// <c>blocks.N.attn.qkv.bias_mask</c> is added with the official pattern (1 for q, 0 for k, 1 for v).</item>
/// <item><c>layer.N.attention.o_proj</c> → <c>blocks.N.attn.proj</c>; <c>layer.N.layer_scaleK.lambda1</c> → <c>blocks.N.lsK.gamma</c>;
/// <c>layer.N.normK</c> → <c>blocks.N.normK</c>; <c>norm</c> → <c>norm</c>.</item>
/// <item>Gated MLP: <c>gate_proj</c>/<c>up_proj</c>/<c>down_proj</c> → <c>w1</c>/<c>w2</c>/<c>w3</c>; plain MLP: <c>up_proj</c>/<c>down_proj</c> → <c>fc1</c>/<c>fc2</c>.</item>
/// <item><c>rope_embed.periods</c> is not stored by Hugging Face: it is computed as the official
/// <c>RopePositionEmbedding._init_weights</c> does in fp32 (<see cref="RopePeriods"/>). The released <c>.pth</c>
/// stores it in bf16 instead (values differ by up to 0.4%); load the <c>.pth</c> for bit-parity with the official model.</item>
/// </list>
/// A key prefix in front of <c>embeddings.</c> (a wrapping model, e.g. <c>dinov3_vit.</c>) is removed and keys outside it
/// (task heads) are ignored. Any other key that does not map is an error.
/// </remarks>
public static class DinoV3Layout
{
    const string HfPatchKey = "embeddings.patch_embeddings.weight";
    static readonly Regex LayerKey = new(@"^layer\.(\d+)\.", RegexOptions.CultureInvariant);

    /// <summary>True when the keys are the Hugging Face layout (<c>…embeddings.patch_embeddings.weight</c>).</summary>
    public static bool IsHuggingFace(IEnumerable<string> keys) => keys.Any(k => k.EndsWith(HfPatchKey, StringComparison.Ordinal));

    /// <summary>True when the keys are the official layout (<c>patch_embed.proj.weight</c>, <c>cls_token</c>).</summary>
    public static bool IsOfficial(IEnumerable<string> keys)
    {
        var set = keys.ToHashSet();
        return set.Contains("patch_embed.proj.weight") && set.Contains("cls_token");
    }

    /// <summary>
    /// The official fp32 RoPE periods: <c>base ** (2 * arange(headDim / 4) / (headDim / 2))</c>, computed in fp32 like
    /// <c>RopePositionEmbedding._init_weights</c> (ViT-S+/16: head 64, base 100 → 16 values from 1 to 74.99).
    /// </summary>
    public static Tensor RopePeriods(int headDim, double ropeBase = 100)
    {
        if (headDim <= 0 || headDim % 4 != 0) throw new ArgumentException($"head dim {headDim} is not a positive multiple of 4.", nameof(headDim));
        Runtime.TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var exponent = arange(headDim / 4, dtype: ScalarType.Float32).mul(2).div(headDim / 2);
        return full_like(exponent, ropeBase).pow(exponent).MoveToOuterDisposeScope(); // fp32 base ** fp32 exponent, as torch does
    }

    /// <summary>
    /// Converts Hugging Face DINOv3 weights to the official keys (see the remarks). <paramref name="numHeads"/>
    /// (config <c>num_attention_heads</c>) and <paramref name="ropeBase"/> (config <c>rope_theta</c>) give the RoPE
    /// periods. The result reuses the input tensors where a key is only renamed; the input dict is left as it is.
    /// </summary>
    public static Dictionary<string, Tensor> FromHuggingFace(IReadOnlyDictionary<string, Tensor> hf, int numHeads, double ropeBase = 100, string source = "(in memory)")
    {
        string anchor = hf.Keys.FirstOrDefault(k => k.EndsWith(HfPatchKey, StringComparison.Ordinal))
            ?? throw new CheckpointFormatException(source, $"not a Hugging Face DINOv3 state dict (no {HfPatchKey}).");
        string prefix = anchor[..^HfPatchKey.Length];
        var src = hf.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);
        var used = new HashSet<string>(StringComparer.Ordinal);
        var output = new Dictionary<string, Tensor>(StringComparer.Ordinal);

        Tensor? TryTake(string key)
        {
            if (!src.TryGetValue(key, out var t)) return null;
            used.Add(key);
            return t;
        }
        Tensor Take(string key) => TryTake(key) ?? throw new CheckpointFormatException(source, $"the Hugging Face DINOv3 weights lack '{prefix}{key}'.");
        void Rename(string from, string to, bool required = true)
        {
            var t = required ? Take(from) : TryTake(from);
            if (t is not null) output[to] = t;
        }

        Runtime.TorchRuntime.EnsureInitialized();
        var cls = Take("embeddings.cls_token");
        long hidden = cls.shape[^1];
        if (numHeads <= 0 || hidden % numHeads != 0 || (hidden / numHeads) % 4 != 0)
            throw new CheckpointFormatException(source, $"{numHeads} attention heads do not divide the width {hidden} into a head size that is a multiple of 4.");
        output["cls_token"] = cls;
        Rename("embeddings.register_tokens", "storage_tokens", required: false);
        var mask = Take("embeddings.mask_token");
        output["mask_token"] = mask.dim() == 3 ? mask.reshape(mask.shape[0], mask.shape[2]) : mask;
        Rename("embeddings.patch_embeddings.weight", "patch_embed.proj.weight");
        Rename("embeddings.patch_embeddings.bias", "patch_embed.proj.bias", required: false);
        output["rope_embed.periods"] = RopePeriods((int)(hidden / numHeads), ropeBase);

        var layers = src.Keys.Select(k => LayerKey.Match(k)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value)).Distinct().Order().ToList();
        if (layers.Count == 0 || layers[^1] != layers.Count - 1)
            throw new CheckpointFormatException(source, $"the Hugging Face DINOv3 layers are not numbered 0..N-1 (found {string.Join(",", layers)}).");
        foreach (int i in layers)
        {
            string p = $"layer.{i}.", b = $"blocks.{i}.";
            Rename(p + "norm1.weight", b + "norm1.weight");
            Rename(p + "norm1.bias", b + "norm1.bias");
            string a = p + "attention.";
            output[b + "attn.qkv.weight"] = cat([Take(a + "q_proj.weight"), Take(a + "k_proj.weight"), Take(a + "v_proj.weight")], 0);
            Tensor? qb = TryTake(a + "q_proj.bias"), kb = TryTake(a + "k_proj.bias"), vb = TryTake(a + "v_proj.bias");
            if (qb is not null && vb is not null)
            {
                output[b + "attn.qkv.bias"] = cat([qb, kb ?? zeros_like(qb), vb], 0);
                if (kb is null) output[b + "attn.qkv.bias_mask"] = cat([ones_like(qb), zeros_like(qb), ones_like(vb)], 0);
            }
            else if (qb is not null || vb is not null || kb is not null)
                throw new CheckpointFormatException(source, $"layer {i} has only some of the q/k/v biases; the official qkv layer needs q and v biases together.");
            Rename(a + "o_proj.weight", b + "attn.proj.weight");
            Rename(a + "o_proj.bias", b + "attn.proj.bias", required: false);
            Rename(p + "layer_scale1.lambda1", b + "ls1.gamma");
            Rename(p + "norm2.weight", b + "norm2.weight");
            Rename(p + "norm2.bias", b + "norm2.bias");
            bool gated = src.ContainsKey(p + "mlp.gate_proj.weight");
            foreach (var (hfName, name) in gated
                         ? new[] { ("gate_proj", "w1"), ("up_proj", "w2"), ("down_proj", "w3") }
                         : new[] { ("up_proj", "fc1"), ("down_proj", "fc2") })
            {
                Rename($"{p}mlp.{hfName}.weight", $"{b}mlp.{name}.weight");
                Rename($"{p}mlp.{hfName}.bias", $"{b}mlp.{name}.bias", required: false);
            }
            Rename(p + "layer_scale2.lambda1", b + "ls2.gamma");
        }
        Rename("norm.weight", "norm.weight");
        Rename("norm.bias", "norm.bias");

        var unused = src.Keys.Where(k => !used.Contains(k) && k != "rope_embeddings.inv_freq").ToList();
        if (unused.Count > 0)
        {
            foreach (var t in output.Values.Where(t => !hf.Values.Any(h => ReferenceEquals(h, t)))) t.Dispose();
            throw new CheckpointFormatException(source, $"{unused.Count} Hugging Face DINOv3 key(s) have no official counterpart: " +
                                                        string.Join(", ", unused.Take(10).Select(k => prefix + k)) + (unused.Count > 10 ? ", …" : "") + ".");
        }
        return output;
    }
}
