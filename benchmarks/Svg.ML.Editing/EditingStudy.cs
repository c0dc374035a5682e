using Svg.ML.Data;
using Svg.ML.Diffusion;
using Svg.ML.Diffusion.Editing;
using Svg.ML.PaperClaims;
using Svg.ML.Training;
using Svg.Quickstart;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Editing;

/// <summary>FD of the interpolants at λ = 0.5 of one arm, with the plain samples of the two endpoint seed sets.</summary>
public sealed record InterpolationFd(string Arm, FdPair EndpointA, FdPair EndpointB, FdPair Lerp, FdPair Slerp, double LerpNormRatio);

/// <summary>How often the CNN classifies edits as the target class (and as the input's class).</summary>
public sealed record EditSuccess(string Mode, double EditTime, int Edits, double TargetRate, double SourceRate);

/// <summary>Editing and interpolation with one arm's trained generator (its EMA DiT, normaliser, encoder and decoder).</summary>
public sealed class EditingStudy(Arm arm, DiffusionTrainingResult diffusion, SamplerOptions sampler)
{
    const int Batch = 64;
    readonly SvgDiTConfig _config = diffusion.EmaModel.Config;

    long[] RowShape => new long[] { _config.NumTokens, _config.InChannels };

    /// <summary>Samples noise rows [N, T, C] under <paramref name="labels"/> and decodes: RGB [N, 3, 32, 32] in [0, 1] on the CPU.</summary>
    public Tensor Sample(Tensor noise, IReadOnlyList<int> labels)
    {
        var parts = new List<Tensor>();
        try
        {
            using var _ = no_grad();
            var flow = new Sampler(diffusion.EmaModel);
            for (int s = 0; s < labels.Count; s += Batch)
            {
                using var scope = NewDisposeScope();
                int n = Math.Min(Batch, labels.Count - s);
                var y = tensor(labels.Skip(s).Take(n).Select(l => (long)l).ToArray());
                var tokens = flow.Sample(noise.narrow(0, s, n), y, Sampler.NullLabels(y, _config.NullClass), sampler);
                parts.Add(Decode(tokens).MoveToOuterDisposeScope());
            }
            return cat(parts, 0);
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }

    /// <summary>Normalised tokens [N, T, C] → images [N, 3, 32, 32] in [0, 1].</summary>
    Tensor Decode(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        var latents = LatentTokens.ToLatent(diffusion.Normalizer.Denormalize(tokens), _config.GridSize, _config.GridSize);
        return Generation.Decode(arm.Decoder, latents).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Interpolation smoothness: <paramref name="pairs"/> noise pairs (seeds base+i and base+1 000 000+i, balanced
    /// classes), sampled at λ = 0 and 1 (plain samples) and at λ = 0.5 by lerp and by slerp; FD of each set against the
    /// held-out images (<paramref name="fd"/>).
    /// </summary>
    public InterpolationFd Smoothness(int pairs, int numClasses, long seed, Func<Tensor, FdPair> fd)
    {
        using var scope = NewDisposeScope();
        var labels = Generation.BalancedLabels(pairs, numClasses);
        var a = SeededNoise.Draw(Enumerable.Range(0, pairs).Select(i => seed + 3_000_000 + i).ToArray(), RowShape);
        var b = SeededNoise.Draw(Enumerable.Range(0, pairs).Select(i => seed + 4_000_000 + i).ToArray(), RowShape);
        var lerp = Interpolation.Lerp(a, b, 0.5);
        var slerp = Interpolation.Slerp(a, b, 0.5);
        double ratio = (lerp.flatten(1).norm(1) / a.flatten(1).norm(1)).mean().item<float>();
        FdPair Of(Tensor noise) { using var images = Sample(noise, labels); return fd(images); }
        return new InterpolationFd(arm.Name, Of(a), Of(b), Of(lerp), Of(slerp), ratio);
    }

    /// <summary>One row per method: the interpolants of the pair of seeds at <paramref name="lambdas"/>, [2·L, 3, 32, 32].</summary>
    public Tensor InterpolationRows(long seedA, long seedB, int label, IReadOnlyList<double> lambdas)
    {
        using var scope = NewDisposeScope();
        var a = SeededNoise.Draw(new[] { seedA }, RowShape);
        var b = SeededNoise.Draw(new[] { seedB }, RowShape);
        var rows = new[] { InterpolationMethod.Lerp, InterpolationMethod.Slerp }
            .Select(m => Interpolation.Path(a, b, lambdas, m)).ToArray();
        return Sample(cat(rows, 0), Enumerable.Repeat(label, 2 * lambdas.Count).ToArray()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Edits <paramref name="images"/> [n, 3, 32, 32] (classes <paramref name="source"/>) to each of the
    /// <paramref name="targets"/> (per image) inside <paramref name="region"/> [h, w], with noise seeds seed + row.
    /// Returns the edited images [n·k, 3, 32, 32], image-major.
    /// </summary>
    public Tensor Edit(Tensor images, int[] source, int[][] targets, Tensor region, EditOptions options, long seed)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        int n = source.Length, k = targets[0].Length;
        var tokens = diffusion.Normalizer.Normalize(LatentTokens.ToTokens(arm.Encode(images)));
        var x = tokens.repeat_interleave(k, 0);
        var src = tensor(source.SelectMany(s => Enumerable.Repeat((long)s, k)).ToArray());
        var tgt = tensor(targets.SelectMany(t => t.Select(c => (long)c)).ToArray());
        var noise = SeededNoise.Draw(Enumerable.Range(0, n * k).Select(i => seed + i).ToArray(), RowShape);
        var edited = new MaskedEdit(diffusion.EmaModel).Edit(x, region.expand(n * k, -1, -1), tgt, noise, options, src);
        return Decode(edited).MoveToOuterDisposeScope();
    }

    /// <summary>The decoder's reconstruction of <paramref name="images"/> (encode → decode), for reference.</summary>
    public Tensor Reconstruct(Tensor images)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        return Generation.Decode(arm.Decoder, arm.Encode(images)).MoveToOuterDisposeScope();
    }

    /// <summary>The region as an image: white where edited (or kept), upsampled to 32 px, [1, 3, 32, 32].</summary>
    public static Tensor MaskImage(Tensor region, int size = 32)
    {
        using var scope = NewDisposeScope();
        var m = nn.functional.interpolate(region.view(1, 1, region.shape[0], region.shape[1]), new long[] { size, size }, mode: InterpolationMode.Nearest);
        return m.expand(1, 3, size, size).contiguous().MoveToOuterDisposeScope();
    }
}
