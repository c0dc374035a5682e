using Svg.ML.Encoders;
using Svg.ML.Encoders.DinoV3;
using Svg.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Autoencoder;

/// <summary>
/// The SVG encoder (official <c>DinoDecoder.encode</c>, shiml20/SVG <c>autoencoder/ldm/models/dino_decoder.py</c>):
/// frozen base features plus a few residual channels, distribution-aligned and concatenated.
/// <code>
///   h     = base(x)                         [B, C, N]    DINOv3 normed patch tokens (frozen)
///   h_vit = extra_vit(x)                    [B, 8, N]    residual encoder
///   (training, mask_ratio &gt; 0: each row's h_vit ← mask_token with probability mask_ratio)
///   h_vit ← (h_vit − μ_vit) / (σ_vit + 1e-6) · σ_h + μ_h              (match_distribution)
///   z     = concat(h, h_vit) viewed as      [B, C + 8, H/16, W/16]
/// </code>
/// μ and σ are averages over channels of per-channel means and unbiased stds: of the current batch
/// (<see cref="ResidualAlignment.BatchStatistics"/>, the official behaviour) or estimated once
/// (<see cref="ResidualAlignment.Stored"/>, <see cref="Statistics"/>).
/// Keys: <c>encoder.*</c> (the base module, e.g. DINOv3), <c>extra_vit.*</c>, <c>mask_token</c> [1, 8, 1] (only when
/// mask_ratio &gt; 0) and <c>norm_vit.*</c> (an unused LayerNorm kept so the official checkpoints load strictly).
/// </summary>
public sealed class SvgEncoder : nn.Module<Tensor, Tensor>
{
    // Children and parameters: the field names are the official state_dict keys.
    readonly nn.Module encoder;
    readonly ResidualEncoder extra_vit;
    Parameter? mask_token;
    readonly LayerNorm norm_vit;

    // Not a Module field (a record holding the interface), so that the base is registered once, as "encoder".
    readonly FrozenEncoderHandle _base;
    sealed record FrozenEncoderHandle(IFrozenEncoder Encoder);

    /// <summary>The settings.</summary>
    public SvgEncoderConfig Config { get; }

    /// <summary>The statistics used by <see cref="ResidualAlignment.Stored"/> (e.g. from <see cref="EstimateAlignment"/>).</summary>
    public AlignmentStatistics? Statistics { get; set; }

    /// <summary>
    /// Builds the encoder around a frozen base encoder (put in eval mode). The residual encoder, mask token and
    /// norm_vit are freshly initialised (residual: torchvision's init; mask token ~ N(0, 0.02²)).
    /// </summary>
    public SvgEncoder(IFrozenEncoder baseEncoder, SvgEncoderConfig? config = null) : base(nameof(SvgEncoder))
    {
        TorchRuntime.EnsureInitialized();
        config ??= SvgEncoderConfig.Released;
        Config = config;
        _base = new FrozenEncoderHandle(baseEncoder);
        encoder = baseEncoder.Module;
        encoder.eval();
        extra_vit = new ResidualEncoder(config.Residual);
        int outDim = config.Residual.OutputDim;
        if (config.MaskRatio > 0) mask_token = nn.Parameter(empty(1, outDim, 1).normal_(0, 0.02));
        norm_vit = nn.LayerNorm(outDim + config.EmbedDim);
        RegisterComponents();
    }

    /// <summary>The released architecture: DINOv3 ViT-S+/16 base and the released residual encoder (weights still to load).</summary>
    public static SvgEncoder CreateReleased() =>
        new(new DinoVisionTransformer(DinoV3Config.ViTSPlus16), SvgEncoderConfig.Released);

    /// <summary>The frozen base encoder.</summary>
    public IFrozenEncoder BaseEncoder => _base.Encoder;

    /// <summary>The residual encoder (<c>extra_vit</c>).</summary>
    public ResidualEncoder ResidualEncoder => extra_vit;

    /// <summary>Latent channels: base channels + residual channels (384 + 8 = 392 for the release).</summary>
    public int Channels => BaseEncoder.Channels + Config.Residual.OutputDim;

    /// <summary>Input pixels per latent cell.</summary>
    public int PatchSize => BaseEncoder.PatchSize;

    /// <summary>
    /// Training mode for the residual encoder (dropout, mask token); the frozen base stays in eval mode unless
    /// <see cref="SvgEncoderConfig.BaseEncoderFollowsTrainMode"/>.
    /// </summary>
    public override void train(bool on = true)
    {
        base.train(on);
        if (on && !Config.BaseEncoderFollowsTrainMode) encoder.eval();
    }

    /// <summary>The official <c>encode(x)</c> (see <see cref="EncodeNormalized"/>).</summary>
    public override Tensor forward(Tensor x) => EncodeNormalized(x);

    /// <summary>
    /// RGB images in [0, 1], [B, 3, H, W] → SVG latent [B, C + 8, H/p, W/p]. The base gets its own
    /// <see cref="IFrozenEncoder.Preprocess"/>, the residual encoder ImageNet-normalised pixels (as in the official code).
    /// </summary>
    public Tensor Encode(Tensor rgb01)
    {
        using var scope = NewDisposeScope();
        var baseInput = BaseEncoder.Preprocess(rgb01);
        var residualInput = ImageNetNormalization.Normalize(rgb01);
        return scope.MoveToOuter(EncodeCore(baseInput, residualInput));
    }

    /// <summary>
    /// Exactly the official <c>DinoDecoder.encode(x)</c>: <paramref name="imageNetNormalized"/> (ImageNet mean/std
    /// normalised RGB) is fed to both the base and the residual encoder. Valid for bases whose preprocessing is the
    /// ImageNet normalisation (DINOv3).
    /// </summary>
    public Tensor EncodeNormalized(Tensor imageNetNormalized)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(EncodeCore(imageNetNormalized, imageNetNormalized));
    }

    /// <summary>
    /// The unaligned parts for RGB in [0, 1]: base features [B, C, N], raw residual features [B, 8, N] (no mask, no
    /// alignment) and the grid size.
    /// </summary>
    public (Tensor Base, Tensor Residual, int GridHeight, int GridWidth) EncodeParts(Tensor rgb01)
    {
        using var scope = NewDisposeScope();
        var (h, hVit, gh, gw) = Parts(BaseEncoder.Preprocess(rgb01), ImageNetNormalization.Normalize(rgb01));
        scope.MoveToOuter(h, hVit);
        return (h, hVit, gh, gw);
    }

    /// <summary>
    /// Estimates the <see cref="ResidualAlignment.Stored"/> statistics over batches of RGB images in [0, 1]
    /// (eval mode, no gradients, one dispose scope per batch): exact per-channel means and unbiased stds over all
    /// rows, averaged over channels as the official <c>match_distribution</c> does. Assign the result to
    /// <see cref="Statistics"/> to use it.
    /// </summary>
    public AlignmentStatistics EstimateAlignment(IEnumerable<Tensor> rgb01Batches)
    {
        using var accumulator = new AlignmentStatisticsAccumulator();
        bool wasTraining = training;
        eval();
        try
        {
            using var _ = no_grad();
            foreach (var batch in rgb01Batches)
            {
                using var scope = NewDisposeScope();
                var (h, hVit, _, _) = EncodeParts(batch);
                accumulator.Add(h, hVit);
            }
        }
        finally
        {
            train(wasTraining);
        }
        return accumulator.ToStatistics();
    }

    /// <summary>
    /// The official <c>match_distribution(h, h_vit)</c> with current-batch statistics:
    /// (h_vit − mean_c(μ_vit,c)) / (mean_c(σ_vit,c) + eps) · mean_c(σ_h,c) + mean_c(μ_h,c), with μ, σ (unbiased)
    /// per channel over dims (0, 2) and the four scalars detached.
    /// </summary>
    public static Tensor MatchDistribution(Tensor h, Tensor hVit, double eps = 1e-6)
    {
        using var scope = NewDisposeScope();
        var dims = new long[] { 0, 2 };
        var meanH = h.mean(dims, keepdim: true).mean().detach();
        var stdH = h.std(dims, unbiased: true, keepdim: true).mean().detach();
        var meanVit = hVit.mean(dims, keepdim: true).mean().detach();
        var stdVit = hVit.std(dims, unbiased: true, keepdim: true).mean().detach();
        var normed = (hVit - meanVit) / (stdVit + eps);
        return scope.MoveToOuter(normed * stdH + meanH);
    }

    Tensor EncodeCore(Tensor baseInput, Tensor residualInput)
    {
        var (h, hVit, gh, gw) = Parts(baseInput, residualInput);
        long B = hVit.shape[0], D = hVit.shape[1], N = hVit.shape[2];

        if (training && Config.MaskRatio > 0)
        {
            // Whole-sample masking: flag_b ~ Bernoulli(mask_ratio); h_vit_b ← mask_token where flagged. The uniforms come
            // from the global CPU generator (seeded and checkpointed by AutoencoderTraining) on every device.
            var flags = DeviceRandom.Rand([B], null, hVit.device).lt(Config.MaskRatio).to(hVit.dtype).view(B, 1, 1);
            hVit = hVit * (1 - flags) + mask_token!.expand(B, D, N) * flags;
        }

        hVit = Config.Alignment switch
        {
            ResidualAlignment.None => hVit,
            ResidualAlignment.BatchStatistics => MatchDistribution(h, hVit, Config.AlignmentEps),
            ResidualAlignment.Stored => (Statistics ?? throw new InvalidOperationException(
                "SvgEncoder: Alignment is Stored but Statistics is not set (estimate it with EstimateAlignment)."))
                .Apply(hVit, Config.AlignmentEps),
            _ => throw new InvalidOperationException($"Unknown alignment {Config.Alignment}."),
        };
        return cat(new[] { h, hVit }, dim: 1).view(B, -1, gh, gw);
    }

    /// <summary>Base features [B, C, N] (no gradients: the base is frozen) and residual features [B, 8, N].</summary>
    (Tensor Base, Tensor Residual, int GridHeight, int GridWidth) Parts(Tensor baseInput, Tensor residualInput)
    {
        Tensor grid;
        using (no_grad()) grid = BaseEncoder.EncodeGrid(baseInput);          // [B, C, h, w]
        int gh = (int)grid.shape[2], gw = (int)grid.shape[3];
        var h = grid.flatten(2);                                             // [B, C, N]
        var hVit = extra_vit.forward(residualInput);                         // [B, 8, N']
        if (hVit.shape[2] != (long)gh * gw)
            throw new InvalidOperationException(
                $"SvgEncoder: the base encoder gives a {gh}×{gw} grid but the residual encoder {hVit.shape[2]} tokens; " +
                $"use images of {Config.Residual.ImageSize}×{Config.Residual.ImageSize} with matching patch sizes.");
        return (h, hVit, gh, gw);
    }
}
