using System.Runtime.CompilerServices;
using Microsoft.ML;

namespace Svg.ML.MLNet;

/// <summary>
/// ML.NET catalog entry points of Svg.ML: <c>mlContext.Transforms.SvgFeaturize(...)</c>,
/// <c>mlContext.Transforms.SvgDecode(...)</c>, <c>mlContext.Transforms.SvgDiffusion(...)</c>.
/// <para>
/// ML.NET gives third-party catalog extensions no access to the <see cref="MLContext"/> behind
/// <c>mlContext.Transforms</c>. Call <see cref="RegisterSvg"/> once on a context so that estimators made from its
/// catalog use its <see cref="MLContext.GpuDeviceId"/>, <see cref="MLContext.FallbackToCpu"/>, seed and log;
/// otherwise they run on the CPU (or on the device their options name) with their own unseeded context. Estimators
/// constructed directly with an <see cref="MLContext"/> use it.
/// </para>
/// </summary>
public static class SvgCatalog
{
    static readonly ConditionalWeakTable<TransformsCatalog, MLContext> Registered = new();

    /// <summary>
    /// Lets <c>mlContext.Transforms.Svg*</c> estimators use this context's device settings, seed and log.
    /// Returns the context.
    /// </summary>
    public static MLContext RegisterSvg(this MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        Registered.AddOrUpdate(mlContext.Transforms, mlContext);
        return mlContext;
    }

    /// <summary>The context registered for <paramref name="catalog"/>, if any.</summary>
    internal static MLContext? ContextOf(TransformsCatalog catalog) => Registered.TryGetValue(catalog, out var ml) ? ml : null;

    /// <summary>
    /// Featurizes an image column with the SVG encoder (frozen DINOv3 + residual channels): adds one float vector column
    /// of the chosen <paramref name="kind"/>.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">The column to add.</param>
    /// <param name="inputColumnName">The image column (<c>MLImage</c>, e.g. from <c>LoadImages</c>); any size and format.</param>
    /// <param name="kind">Dense feature map (C×h×w), pooled vector (C) or DINO class token.</param>
    /// <param name="dinoCheckpointPath">DINOv3 weights (official <c>.pth</c> or Hugging Face safetensors); the architecture is <see cref="SvgFeaturizerEstimator.Options.DinoConfig"/>.</param>
    /// <param name="autoencoderCheckpointPath">Optional SVG autoencoder checkpoint for the 8 residual channels.</param>
    /// <param name="batchSize">Rows per forward pass; 0 picks a default for the device.</param>
    public static SvgFeaturizerEstimator SvgFeaturize(this TransformsCatalog catalog,
        string outputColumnName = "Features",
        string inputColumnName = "Image",
        SvgFeatureKind kind = SvgFeatureKind.FeatureMap,
        string? dinoCheckpointPath = null,
        string? autoencoderCheckpointPath = null,
        int batchSize = 0)
    {
        var options = new SvgFeaturizerEstimator.Options
        {
            InputColumnName = inputColumnName,
            DinoCheckpointPath = dinoCheckpointPath,
            AutoencoderCheckpointPath = autoencoderCheckpointPath,
            BatchSize = batchSize,
        };
        options.SetOutput(kind, outputColumnName);
        return SvgFeaturize(catalog, options);
    }

    /// <summary>Featurizes an image column with the SVG encoder, with every option (several output columns possible).</summary>
    public static SvgFeaturizerEstimator SvgFeaturize(this TransformsCatalog catalog, SvgFeaturizerEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new SvgFeaturizerEstimator(new ContextRef(catalog), options);
    }

    /// <summary>Decodes a column of SVG features (C×h×w) into an image column with the SVG (LDM) decoder, in batches.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">The image column to add.</param>
    /// <param name="inputColumnName">The feature column (float vector of size C·h·w).</param>
    /// <param name="autoencoderCheckpointPath">SVG autoencoder checkpoint holding the decoder (<c>decoder.*</c>).</param>
    /// <param name="batchSize">Rows per forward pass; 0 picks a default for the device.</param>
    public static SvgDecoderEstimator SvgDecode(this TransformsCatalog catalog,
        string outputColumnName = "Image",
        string inputColumnName = "Features",
        string? autoencoderCheckpointPath = null,
        int batchSize = 0) =>
        SvgDecode(catalog, new SvgDecoderEstimator.Options
        {
            OutputColumnName = outputColumnName,
            InputColumnName = inputColumnName,
            AutoencoderCheckpointPath = autoencoderCheckpointPath,
            BatchSize = batchSize,
        });

    /// <summary>Decodes SVG features into images, with every option.</summary>
    public static SvgDecoderEstimator SvgDecode(this TransformsCatalog catalog, SvgDecoderEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new SvgDecoderEstimator(new ContextRef(catalog), options);
    }

    /// <summary>
    /// Trains a class-conditional SVG diffusion model on a feature column (or an image column with a featurizer) and
    /// a key-typed label; <c>Fit</c> returns an <see cref="SvgGenerator"/>.
    /// </summary>
    public static SvgDiffusionTrainer SvgDiffusion(this TransformsCatalog catalog, SvgDiffusionTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new SvgDiffusionTrainer(new ContextRef(catalog), options);
    }
}

/// <summary>Where an Svg.ML component gets its MLContext: given directly, or registered for a catalog.</summary>
internal sealed class ContextRef
{
    readonly MLContext? _context;
    readonly TransformsCatalog? _catalog;
    MLContext? _fallback;

    public ContextRef(MLContext context) => _context = context ?? throw new ArgumentNullException(nameof(context));
    public ContextRef(TransformsCatalog catalog) => _catalog = catalog;

    /// <summary>The context; for an unregistered catalog a private default context (CPU, unseeded).</summary>
    public MLContext Resolve() =>
        _context ?? (_catalog is null ? null : SvgCatalog.ContextOf(_catalog)) ?? (_fallback ??= new MLContext());
}
