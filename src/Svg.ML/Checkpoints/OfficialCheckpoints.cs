using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Checkpoints;

/// <summary>
/// The weights of the released SVG autoencoder (<c>svg_autoencoder_*.ckpt</c>) split by component, under the keys
/// each component's own module uses (prefix removed). The split dicts share their tensors with <see cref="All"/>.
/// </summary>
/// <param name="All">Every kept tensor under its checkpoint key (<c>decoder.*</c>, <c>extra_vit.*</c>, <c>encoder.*</c>, <c>mask_token</c>, <c>norm_vit.*</c>, …).</param>
/// <param name="Decoder">The LDM decoder (<c>decoder.</c> removed).</param>
/// <param name="Residual">The residual ViT encoder (torchvision keys, <c>extra_vit.</c> removed).</param>
/// <param name="Dino">The frozen DINOv3 backbone (official keys, <c>encoder.</c> removed; <c>rope_embed.periods</c> in fp32). Empty when the checkpoint does not carry it.</param>
/// <param name="MaskToken">The residual mask token [1, 8, 1], or null (the released model was trained without masking).</param>
/// <param name="NormVit">The unused <c>norm_vit</c> LayerNorm (<c>norm_vit.</c> removed), kept so a full module loads strictly.</param>
/// <param name="Other">Keys outside the known groups (empty for the released file).</param>
/// <param name="DroppedLossKeys">The training-loss keys (<c>loss.*</c>: LPIPS and the discriminator) that were skipped without being read.</param>
public sealed record SvgAutoencoderWeights(
    Dictionary<string, Tensor> All,
    Dictionary<string, Tensor> Decoder,
    Dictionary<string, Tensor> Residual,
    Dictionary<string, Tensor> Dino,
    Tensor? MaskToken,
    Dictionary<string, Tensor> NormVit,
    Dictionary<string, Tensor> Other,
    IReadOnlyList<string> DroppedLossKeys);

/// <summary>The per-channel latent statistics used to normalise SVG features for the DiT (<c>dinov3_sp_stats.pt</c>).</summary>
/// <param name="Mean">fp32 [1, 1, C] (C = 392 for the released model).</param>
/// <param name="Std">fp32 [1, 1, C].</param>
public sealed record FeatureStatistics(Tensor Mean, Tensor Std)
{
    /// <summary>The key of the mean in the official file.</summary>
    public const string MeanKey = "dinov3_sp_mean";

    /// <summary>The key of the standard deviation in the official file.</summary>
    public const string StdKey = "dinov3_sp_std";

    /// <summary>Number of channels (the last dimension).</summary>
    public long Channels => Mean.shape[^1];
}

/// <summary>
/// Loaders for the official checkpoint files of DINOv3 and SVG. Each returns CPU tensors under the official
/// <c>state_dict</c> keys, ready for <see cref="StateDict.Load"/>. Pickled files are read by the safe, inert reader of
/// <see cref="TorchCheckpoint"/> (nothing in them is executed; code-carrying files are refused).
/// </summary>
public static class OfficialCheckpoints
{
    /// <summary>
    /// DINOv3 backbone weights under the official keys (212 tensors for ViT-S+/16). Accepts the official <c>.pth</c>
    /// (a plain state dict; its bf16 <c>rope_embed.periods</c> are kept and widened to fp32, not recomputed), a
    /// Hugging Face <c>model.safetensors</c> or model folder (converted by <see cref="DinoV3Layout.FromHuggingFace"/>), or a
    /// safetensors file with the official keys. The layout is detected from the keys.
    /// </summary>
    /// <param name="path">The file or Hugging Face folder.</param>
    /// <param name="numHeads">Attention heads; only needed for the Hugging Face layout when no <c>config.json</c> lies
    /// beside the weights (it overrides the config's <c>num_attention_heads</c>).</param>
    /// <param name="ropeBase">RoPE base; for the Hugging Face layout, overrides the config's <c>rope_theta</c> (default 100).</param>
    /// <param name="allowList">The globals a pickle may name; null for <see cref="PickleAllowList.Default"/>.</param>
    public static Dictionary<string, Tensor> LoadDinoV3(string path, int? numHeads = null, double? ropeBase = null, PickleAllowList? allowList = null)
    {
        var weights = Checkpoint.StripWrapperPrefixes(Checkpoint.ReadTensors(path, null, allowList));
        if (DinoV3Layout.IsHuggingFace(weights.Keys))
        {
            var (heads, theta) = HuggingFaceRope(path, numHeads, ropeBase);
            try
            {
                var converted = DinoV3Layout.FromHuggingFace(weights, heads, theta, path);
                var kept = new HashSet<Tensor>(converted.Values, ReferenceEqualityComparer.Instance);
                foreach (var t in weights.Values.Where(t => !kept.Contains(t))) t.Dispose();
                return converted;
            }
            catch
            {
                foreach (var t in weights.Values) t.Dispose();
                throw;
            }
        }
        if (!DinoV3Layout.IsOfficial(weights.Keys))
        {
            string first = string.Join(", ", weights.Keys.Take(5));
            foreach (var t in weights.Values) t.Dispose();
            throw new CheckpointFormatException(path, "not DINOv3 backbone weights: neither the official keys (cls_token, patch_embed.proj.weight, blocks.N.…) " +
                                                      $"nor the Hugging Face keys (embeddings.patch_embeddings.weight, layer.N.…) are present; first keys: {first}.");
        }
        PeriodsToFloat32(weights, "rope_embed.periods");
        if (numHeads is int h && weights.TryGetValue("rope_embed.periods", out var periods) && periods.numel() * 4 * h != weights["cls_token"].shape[^1])
            throw new CheckpointFormatException(path, $"has {periods.numel()} RoPE periods, which does not fit {h} heads of width {weights["cls_token"].shape[^1]}.");
        return weights;
    }

    /// <summary>
    /// SVG DiT weights. Accepts <c>{"ema": state_dict}</c> (the released <c>V1-SVG-XL-*.pt</c>), a training checkpoint
    /// <c>{"model", "ema", "opt", "args"}</c>, a Lightning-style <c>{"state_dict": …}</c>, a bare state dict, or safetensors.
    /// Without <paramref name="entry"/>, the first present of <see cref="Checkpoint.StateDictEntryOrder"/> is used
    /// (<c>ema</c> before <c>model</c>: the EMA weights are the ones to sample with). A <c>module.</c>/<c>_orig_mod.</c>
    /// prefix on every key (DDP, torch.compile) is removed.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="entry">The entry to read (e.g. <c>"model"</c> for the non-EMA weights); null to choose automatically.</param>
    /// <param name="allowList">The globals a pickle may name; null for <see cref="PickleAllowList.Default"/>.</param>
    public static Dictionary<string, Tensor> LoadSvgDiT(string path, string? entry = null, PickleAllowList? allowList = null) =>
        Checkpoint.StripWrapperPrefixes(Checkpoint.ReadTensors(path, entry, allowList));

    /// <summary>
    /// The SVG autoencoder's Lightning checkpoint (<c>{"state_dict": {...}, "epoch", "global_step", ...}</c>; a bare
    /// state dict or safetensors with the same keys also works), split into decoder, residual encoder, DINOv3 and mask
    /// token. The <c>loss.*</c> entries (LPIPS, discriminator) and every non-weight entry are skipped without being read.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="allowList">The globals a pickle may name; null for <see cref="PickleAllowList.Default"/> (a training
    /// setup that pickled other inert config classes into <c>hyper_parameters</c> can allow them with <see cref="PickleAllowList.With"/>).</param>
    public static SvgAutoencoderWeights LoadSvgAutoencoder(string path, PickleAllowList? allowList = null)
    {
        Dictionary<string, Tensor> all;
        var dropped = new List<string>();
        bool Keep(string key)
        {
            if (!key.StartsWith("loss.", StringComparison.Ordinal)) return true;
            dropped.Add(key);
            return false;
        }

        if (Checkpoint.DetectFormat(path) == CheckpointFormat.TorchZip)
        {
            using var ckpt = TorchCheckpoint.Open(path, allowList);
            var node = ckpt.Entry("state_dict") ?? Checkpoint.SelectStateDict(ckpt, null, out _);
            all = ckpt.ReadStateDict(node, Keep, "'state_dict'");
        }
        else
        {
            all = Checkpoint.ReadTensors(path, null, allowList);
            foreach (var key in all.Keys.Where(k => !Keep(k)).ToList()) { all[key].Dispose(); all.Remove(key); }
        }
        all = Checkpoint.StripWrapperPrefixes(all);

        var decoder = StateDict.WithPrefix(all, "decoder.");
        if (decoder.Count == 0)
        {
            string first = string.Join(", ", all.Keys.Take(5));
            foreach (var t in all.Values) t.Dispose();
            throw new CheckpointFormatException(path, $"not an SVG autoencoder checkpoint: no decoder.* weights (first keys: {first}).");
        }
        PeriodsToFloat32(all, "encoder.rope_embed.periods");
        string[] groups = ["decoder.", "extra_vit.", "encoder.", "norm_vit."];
        var other = all.Where(kv => kv.Key != "mask_token" && !groups.Any(g => kv.Key.StartsWith(g, StringComparison.Ordinal)))
                       .ToDictionary(kv => kv.Key, kv => kv.Value);
        return new SvgAutoencoderWeights(
            all, decoder,
            Residual: StateDict.WithPrefix(all, "extra_vit."),
            Dino: StateDict.WithPrefix(all, "encoder."),
            MaskToken: all.GetValueOrDefault("mask_token"),
            NormVit: StateDict.WithPrefix(all, "norm_vit."),
            Other: other,
            DroppedLossKeys: dropped);
    }

    /// <summary>
    /// The latent statistics file (<c>dinov3_sp_stats.pt</c>: <c>{"dinov3_sp_mean", "dinov3_sp_std"}</c>, fp32 [1,1,C]),
    /// or a safetensors file with the same keys (<see cref="SaveFeatureStatistics"/>). Checks that both have the same
    /// shape [1,1,C] and that the std is finite and positive.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="allowList">The globals a pickle may name; null for <see cref="PickleAllowList.Default"/>.</param>
    public static FeatureStatistics LoadFeatureStatistics(string path, PickleAllowList? allowList = null)
    {
        var tensors = Checkpoint.ReadTensors(path, null, allowList);
        try
        {
            if (!tensors.TryGetValue(FeatureStatistics.MeanKey, out var mean) || !tensors.TryGetValue(FeatureStatistics.StdKey, out var std))
                throw new CheckpointFormatException(path, $"not a feature-statistics file: it needs '{FeatureStatistics.MeanKey}' and '{FeatureStatistics.StdKey}', " +
                                                          $"it has {string.Join(", ", tensors.Keys.Take(10))}.");
            if (mean.dim() != 3 || mean.shape[0] != 1 || mean.shape[1] != 1 || !mean.shape.SequenceEqual(std.shape))
                throw new CheckpointFormatException(path, $"feature statistics must both be [1,1,C]; found mean [{string.Join(",", mean.shape)}], std [{string.Join(",", std.shape)}].");
            var m = mean.to(ScalarType.Float32);
            var s = std.to(ScalarType.Float32);
            bool valid;
            using (var ok = s.isfinite().all().logical_and(s.gt(0).all())) valid = ok.item<bool>();
            if (!valid)
            {
                m.Dispose(); s.Dispose();
                throw new CheckpointFormatException(path, "the feature std has zero, negative or non-finite values.");
            }
            tensors.Remove(FeatureStatistics.MeanKey);
            tensors.Remove(FeatureStatistics.StdKey);
            if (!ReferenceEquals(m, mean)) mean.Dispose();
            if (!ReferenceEquals(s, std)) std.Dispose();
            return new FeatureStatistics(m, s);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>Writes feature statistics as safetensors under the official keys (readable by <see cref="LoadFeatureStatistics"/>).</summary>
    public static void SaveFeatureStatistics(string path, FeatureStatistics statistics, IReadOnlyDictionary<string, string>? metadata = null) =>
        SafeTensors.Save(path, new Dictionary<string, Tensor> { [FeatureStatistics.MeanKey] = statistics.Mean, [FeatureStatistics.StdKey] = statistics.Std }, metadata);

    static void PeriodsToFloat32(Dictionary<string, Tensor> weights, string key)
    {
        if (weights.TryGetValue(key, out var p) && p.dtype != ScalarType.Float32)
        {
            weights[key] = p.to(ScalarType.Float32); // bf16 -> fp32 is exact: the stored value is kept
            p.Dispose();
        }
    }

    static (int Heads, double Base) HuggingFaceRope(string path, int? numHeads, double? ropeBase)
    {
        string config = Path.Combine(Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!, "config.json");
        int? heads = numHeads;
        double? theta = ropeBase;
        if (File.Exists(config) && (heads is null || theta is null))
        {
            try
            {
                var json = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
                heads ??= json["num_attention_heads"]?.GetValue<int>();
                theta ??= json["rope_theta"]?.GetValue<double>();
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
            {
                throw new CheckpointFormatException(config, "invalid config.json: " + e.Message, e);
            }
        }
        if (heads is null)
            throw new CheckpointFormatException(path, "has the Hugging Face DINOv3 layout, which does not store the RoPE periods; computing them needs the number " +
                                                      "of attention heads: put its config.json beside the weights or pass numHeads (6 for ViT-S+/16).");
        return (heads.Value, theta ?? 100);
    }
}
