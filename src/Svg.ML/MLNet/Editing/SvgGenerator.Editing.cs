using Svg.ML.Diffusion;
using Svg.ML.Diffusion.Editing;
using static TorchSharp.torch;

namespace Svg.ML.MLNet;

// The direct editing and interpolation API of SvgGenerator (the ML.NET transformers: SvgEditTransformer,
// SvgInterpolationTransformer). Every call works in batches of BatchSize on the generator's device; noise comes from
// per-row CPU generators (SeededNoise), so results do not depend on the device's random generator.
public sealed partial class SvgGenerator
{
    /// <summary>
    /// Samples <paramref name="count"/> interpolants between the noises of <paramref name="seedA"/> and
    /// <paramref name="seedB"/> (λ evenly from 0 to 1, <see cref="Interpolation.Lambdas"/>) under class
    /// <paramref name="label"/>, with the generator's <see cref="Sampler"/> settings: features [count, C, h, w],
    /// de-normalised, on the CPU. The first and last rows start from the very noise <see cref="Generate"/> uses for
    /// those seeds.
    /// </summary>
    public Tensor Interpolate(int label, long seedA, long seedB, int count, InterpolationMethod method = InterpolationMethod.Slerp)
    {
        using var scope = NewDisposeScope();
        return InterpolateLatents(label, seedA, seedB, count, method).cpu().MoveToOuterDisposeScope();
    }

    /// <summary><see cref="Interpolate"/>, decoded: RGB [count, 3, H, W] in [0, 1] on the CPU. Needs a decoder.</summary>
    public Tensor InterpolateImageTensors(int label, long seedA, long seedB, int count, InterpolationMethod method = InterpolationMethod.Slerp)
    {
        using var scope = NewDisposeScope();
        return DecodeFeatures(InterpolateLatents(label, seedA, seedB, count, method)).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Edits features [N, C, h, w] (the featurizer's space, e.g. <c>SvgFeaturizer</c>'s feature map of the images) with
    /// SDEdit and trajectory inversion (<see cref="MaskedEdit"/>): <paramref name="region"/> [N, h, w] or [h, w]
    /// (values in [0, 1] on the latent grid; <see cref="MaskedEdit.BoxMask"/>, <see cref="MaskedEdit.GridMask"/>) is
    /// edited or kept per <see cref="EditOptions.Mode"/>, under the <paramref name="targets"/> classes.
    /// <paramref name="sources"/>: the inputs' classes for the inversion (null: unconditional). Row i's noise comes
    /// from seed <paramref name="seeds"/>[i] (default <see cref="Options.Seed"/> + i). Returns features [N, C, h, w] on the CPU.
    /// </summary>
    public Tensor Edit(Tensor features, Tensor region, IReadOnlyList<int> targets, EditOptions? options = null,
                       IReadOnlyList<int>? sources = null, IReadOnlyList<long>? seeds = null) =>
        EditBatched(features, region, targets, options, sources, seeds, latents => latents.cpu());

    /// <summary><see cref="Edit"/>, decoded: RGB [N, 3, H, W] in [0, 1] on the CPU. Needs a decoder.</summary>
    public Tensor EditImageTensors(Tensor features, Tensor region, IReadOnlyList<int> targets, EditOptions? options = null,
                                   IReadOnlyList<int>? sources = null, IReadOnlyList<long>? seeds = null) =>
        EditBatched(features, region, targets, options, sources, seeds, latents => DecodeFeatures(latents).cpu());

    internal Tensor InterpolateLatents(int label, long seedA, long seedB, int count, InterpolationMethod method)
    {
        CheckClass(label, nameof(label));
        var config = _model.Config;
        var ends = SeededNoise.Draw(new[] { seedA, seedB }, new long[] { config.NumTokens, config.InChannels }, Device);
        var path = Interpolation.Path(ends[..1], ends[1..], Interpolation.Lambdas(count), method);
        var parts = new List<Tensor>();
        for (int i = 0; i < count; i += BatchSize)
        {
            int n = Math.Min(BatchSize, count - i);
            parts.Add(SampleFromNoise(path.narrow(0, i, n), Enumerable.Repeat(label, n).ToArray()));
        }
        return parts.Count == 1 ? parts[0] : cat(parts, 0);
    }

    Tensor EditBatched(Tensor features, Tensor region, IReadOnlyList<int> targets, EditOptions? options,
                       IReadOnlyList<int>? sources, IReadOnlyList<long>? seeds, Func<Tensor, Tensor> output)
    {
        long n = features.shape[0];
        if (features.dim() != 4 || !features.shape.Skip(1).SequenceEqual(FeatureShape.Select(d => (long)d)))
            throw new ArgumentException($"features must be [N, {string.Join(", ", FeatureShape)}]; got [{string.Join(", ", features.shape)}].", nameof(features));
        if (region.dim() == 2) region = region.unsqueeze(0).expand(n, -1, -1);
        if (region.dim() != 3 || region.shape[0] != n)
            throw new ArgumentException($"region must be [{_gridH}, {_gridW}] or [N, {_gridH}, {_gridW}].", nameof(region));
        if (targets.Count != n) throw new ArgumentException("Give one target class per row.", nameof(targets));
        if (sources is not null && sources.Count != n) throw new ArgumentException("Give one source class per row.", nameof(sources));
        if (seeds is not null && seeds.Count != n) throw new ArgumentException("Give one seed per row.", nameof(seeds));
        foreach (int t in targets) CheckClass(t, nameof(targets));
        if (sources is not null) foreach (int s in sources) CheckClass(s, nameof(sources));
        var parts = new List<Tensor>();
        try
        {
            for (int i = 0; i < n; i += BatchSize)
            {
                int k = (int)Math.Min(BatchSize, n - i);
                using var scope = NewDisposeScope();
                var latents = EditLatents(features.narrow(0, i, k).to(Device), region.narrow(0, i, k).to(Device),
                                          targets.Skip(i).Take(k).ToArray(), sources?.Skip(i).Take(k).ToArray(),
                                          Enumerable.Range(i, k).Select(j => seeds?[j] ?? _options.Seed + j).ToArray(), options ?? new EditOptions());
                parts.Add(output(latents).MoveToOuterDisposeScope());
            }
            return parts.Count == 1 ? parts[0].alias() : cat(parts, 0);
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }

    /// <summary>One batch on the device: features [B, C, h, w] → edited features [B, C, h, w] (de-normalised).</summary>
    internal Tensor EditLatents(Tensor features, Tensor region, int[] targets, int[]? sources, long[] seeds, EditOptions options)
    {
        using var _ = no_grad();
        var config = _model.Config;
        var x = _normalizer.Normalize(LatentTokens.ToTokens(features.to(float32)));
        var noise = SeededNoise.Draw(seeds, new long[] { config.NumTokens, config.InChannels }, Device);
        var y = tensor(targets.Select(t => (long)t).ToArray(), device: Device);
        var source = sources is null ? null : tensor(sources.Select(t => (long)t).ToArray(), device: Device);
        var edited = new MaskedEdit(_model).Edit(x, region, y, noise, options, source);
        return LatentTokens.ToLatent(_normalizer.Denormalize(edited), _gridH, _gridW);
    }

    /// <summary>Pixels per latent cell of the decoder (0 without a decoder).</summary>
    internal int DecoderUpsampleFactor => _decoder?.Config.UpsampleFactor ?? 0;

    /// <summary>Writes the generator's files into another transformer's archive (the editing transformers embed it).</summary>
    internal void SaveInto(SvgArchive.Writer archive) => SaveContents(archive);

    void CheckClass(int label, string name)
    {
        if (label < 0 || label >= NumClasses) throw new ArgumentOutOfRangeException(name, label, $"Classes are indices in [0, {NumClasses}).");
    }
}
