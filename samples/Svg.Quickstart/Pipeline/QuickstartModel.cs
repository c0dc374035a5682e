using System.Text.Json;
using System.Text.Json.Nodes;
using Svg.ML.Autoencoder;
using Svg.ML.Checkpoints;
using Svg.ML.Diffusion;
using Svg.ML.Encoders;
using Svg.ML.Encoders.DinoV3;
using Svg.ML.MLNet;
using Svg.ML.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.Quickstart;

/// <summary>Which frozen base encoder the model uses and at what sizes (recorded in saved models).</summary>
/// <param name="Kind"><see cref="ResNet18Kind"/>, <see cref="DinoV3Kind"/> or <see cref="SvgAutoencoderKind"/>.</param>
/// <param name="WeightsPath">DINOv3 weights or official autoencoder checkpoint (null for ResNet18, whose ONNX files come with ML.NET's NuGet package).</param>
/// <param name="Preset">DINOv3 architecture name (<see cref="DinoV3Kind"/> only).</param>
/// <param name="ImageSize">Size the residual encoder and the decoder work at.</param>
/// <param name="BaseSize">Size images are enlarged to for the base.</param>
public sealed record BaseSpec(string Kind, string? WeightsPath, string? Preset, int ImageSize, int BaseSize)
{
    public const string ResNet18Kind = "resnet18";
    public const string DinoV3Kind = "dinov3";
    public const string SvgAutoencoderKind = "svg-autoencoder";

    /// <summary>The base the options ask for.</summary>
    public static BaseSpec FromOptions(QuickstartOptions o)
    {
        if (o.SvgAutoencoderPath is not null)
            return new(SvgAutoencoderKind, o.SvgAutoencoderPath, nameof(DinoV3Config.ViTSPlus16), o.ImageSize ?? 256, o.BaseSize ?? 256);
        if (o.DinoV3Path is not null)
            return new(DinoV3Kind, o.DinoV3Path, o.DinoV3Preset, o.ImageSize ?? 32, o.BaseSize ?? 256);
        return new(ResNet18Kind, null, null, o.ImageSize ?? 32, o.BaseSize ?? 64);
    }
}

/// <summary>The quickstart's model sizes: one function per component, each derived from the data's shape.</summary>
public static class Architecture
{
    /// <summary>Builds the frozen base (weights loaded, eval mode), wrapped to take images of <see cref="BaseSpec.ImageSize"/>.</summary>
    public static IFrozenEncoder BuildBase(BaseSpec spec)
    {
        IFrozenEncoder inner = spec.Kind switch
        {
            BaseSpec.ResNet18Kind => ResNet18.FromModelDirectory(),
            BaseSpec.DinoV3Kind => LoadDinoV3(spec.WeightsPath!, spec.Preset ?? nameof(DinoV3Config.ViTSPlus16), spec.BaseSize),
            BaseSpec.SvgAutoencoderKind => throw new InvalidOperationException("The official autoencoder brings its own base (LoadOfficialAutoencoder)."),
            _ => throw new ArgumentException($"Unknown base kind '{spec.Kind}'."),
        };
        inner.Module.eval();
        return spec.BaseSize == spec.ImageSize ? inner : new ScaledBaseEncoder(inner, spec.ImageSize, spec.BaseSize);
    }

    /// <summary>DINOv3 of the named preset with weights from <paramref name="path"/>.</summary>
    public static DinoVisionTransformer LoadDinoV3(string path, string preset, int imageSize)
    {
        var config = preset switch
        {
            nameof(DinoV3Config.ViTSPlus16) => DinoV3Config.ViTSPlus16,
            nameof(DinoV3Config.ViTS16) => DinoV3Config.ViTS16,
            nameof(DinoV3Config.ViTB16) => DinoV3Config.ViTB16,
            nameof(DinoV3Config.ViTL16) => DinoV3Config.ViTL16,
            _ => throw new ArgumentException($"Unknown DINOv3 preset '{preset}' (ViTSPlus16, ViTS16, ViTB16, ViTL16)."),
        };
        var vit = new DinoVisionTransformer(config, imageSize);
        var weights = OfficialCheckpoints.LoadDinoV3(path, numHeads: config.NumHeads);
        try { StateDict.Load(vit, weights, strict: true, source: path); }
        finally { foreach (var t in weights.Values) t.Dispose(); }
        return vit;
    }

    /// <summary>
    /// The residual encoder: a 2-layer ViT, 128 wide, at the working size with one patch per base grid cell, 8 output
    /// channels, no dropout (the official one has 6 layers, 384 wide, dropout 0.1, at 256 px).
    /// </summary>
    public static ResidualEncoderConfig Residual(int imageSize, int patchSize) => new()
    {
        ImageSize = imageSize, PatchSize = patchSize, NumLayers = 2, NumHeads = 4, HiddenDim = 128, MlpDim = 256,
        OutputDim = 8, Dropout = 0, AttentionDropout = 0,
    };

    /// <summary>The SVG encoder settings: <see cref="Residual"/>, official mask ratio 0.1 and batch-statistics alignment
    /// for training (switched to stored statistics afterwards, <see cref="QuickstartPipeline.WithStoredAlignment"/>).</summary>
    public static SvgEncoderConfig Encoder(IFrozenEncoder baseEncoder, int imageSize) => new()
    {
        Residual = Residual(imageSize, baseEncoder.PatchSize),
        MaskRatio = 0.1,
        Alignment = ResidualAlignment.BatchStatistics,
    };

    /// <summary>
    /// The SVG encoder to train in stage 1: <paramref name="baseEncoder"/> plus a fresh residual encoder initialised
    /// from <paramref name="seed"/> (stream <c>Derive(seed, Init) + 2</c>, next to the decoder's <c>+ 0</c> and the
    /// discriminator's <c>+ 1</c> in <see cref="AutoencoderTraining"/>).
    /// </summary>
    public static SvgEncoder NewSvgEncoder(IFrozenEncoder baseEncoder, int imageSize, long seed) =>
        TrainingRandom.WithGlobalSeed(TrainingRandom.Derive(seed, TrainingRandom.Init) + 2,
                                      () => new SvgEncoder(baseEncoder, Encoder(baseEncoder, imageSize)));

    /// <summary>
    /// A small LDM decoder from the grid to <paramref name="imageSize"/>: one level per doubling (plus the entry level),
    /// base width 32 (GroupNorm needs multiples of 32), one ResNet block per level, attention only in the middle block.
    /// Width multipliers follow the official [1, 1, 2, 2, 4] pattern, truncated from the top.
    /// </summary>
    public static LdmDecoderConfig Decoder(int zChannels, int imageSize, int gridSize)
    {
        if (imageSize % gridSize != 0 || !int.IsPow2(imageSize / gridSize))
            throw new ArgumentException($"The decoder doubles the resolution per level: {imageSize} / {gridSize} must be a power of two.");
        int levels = int.Log2(imageSize / gridSize) + 1;
        int[] mult = levels switch
        {
            1 => [4],
            2 => [2, 4],
            3 => [1, 2, 4],
            4 => [1, 1, 2, 4],
            _ => [.. Enumerable.Repeat(1, levels - 4), 1, 2, 2, 4],
        };
        return new LdmDecoderConfig(Ch: 32, ChMult: mult, NumResBlocks: 0, AttnResolutions: [], ZChannels: zChannels, Resolution: imageSize);
    }

    /// <summary>
    /// The DiT: <c>tiny</c> (width 128, depth 4, 4 heads), <c>small</c> (256, 6, 4) or a paper preset (S, B, L, XL),
    /// sized to the latent channels, grid and classes; no learned sigma (the flow loss does not use it).
    /// </summary>
    public static SvgDiTConfig DiT(string name, int channels, int gridSize, int numClasses)
    {
        var preset = name.ToLowerInvariant() switch
        {
            "tiny" => new SvgDiTConfig(channels, HiddenSize: 128, Depth: 4, NumHeads: 4),
            "small" => new SvgDiTConfig(channels, HiddenSize: 256, Depth: 6, NumHeads: 4),
            "s" => SvgDiTConfig.S,
            "b" => SvgDiTConfig.B,
            "l" => SvgDiTConfig.L,
            "xl" => SvgDiTConfig.XL,
            _ => throw new ArgumentException($"Unknown model '{name}': tiny, small, S, B, L or XL."),
        };
        return preset with { InChannels = channels, GridSize = gridSize, NumClasses = numClasses, LearnSigma = false };
    }

    /// <summary>"width 128, depth 4, 4 heads, 1.4 M parameters" for the printout.</summary>
    public static string Describe(SvgDiTConfig c, nn.Module? model = null) =>
        $"width {c.HiddenSize}, depth {c.Depth}, {c.NumHeads} heads, {c.NumTokens} tokens of {c.InChannels} channels" +
        (model is null ? "" : $", {StateDict.ParameterCount(model) / 1e6:F2} M parameters");
}

/// <summary>
/// A trained quickstart model: the SVG encoder (frozen base + residual, stored alignment), the decoder, the DiT (EMA
/// weights) and its feature normalisation. Saved as a folder: <c>manifest.json</c> (sizes, configs, alignment,
/// class names) and safetensors files for the residual encoder, the decoder, the DiT and the normaliser (the base
/// weights are not copied: ResNet18 comes from ML.NET's NuGet package, DINOv3 from the recorded path), plus
/// <c>generator.zip</c>: the DiT, normaliser and decoder as an ML.NET <see cref="SvgGenerator"/> (<see cref="SvgModel"/> format).
/// </summary>
public sealed class QuickstartModel : IDisposable
{
    /// <summary>Format name in the manifest.</summary>
    public const string Format = "Svg.Quickstart.Model";
    const int FormatVersion = 1;
    readonly bool _owns;

    /// <summary>Groups trained parts; with <paramref name="owns"/>, <see cref="Dispose"/> disposes them.</summary>
    public QuickstartModel(BaseSpec baseSpec, SvgEncoder encoder, LdmDecoder decoder, SvgDiT dit, FeatureNormalizer normalizer,
                           IReadOnlyList<string> classNames, bool owns)
    {
        Base = baseSpec; Encoder = encoder; Decoder = decoder; DiT = dit; Normalizer = normalizer; ClassNames = classNames; _owns = owns;
    }

    public BaseSpec Base { get; }
    public SvgEncoder Encoder { get; }
    public LdmDecoder Decoder { get; }
    public SvgDiT DiT { get; }
    public FeatureNormalizer Normalizer { get; }
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>File name of the ML.NET generator inside a saved model folder.</summary>
    public const string GeneratorFileName = "generator.zip";

    /// <summary>Writes the model folder (created if needed; files replaced).</summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        SaveGenerator(Path.Combine(directory, GeneratorFileName));
        var residual = Encoder.state_dict().Where(kv => !kv.Key.StartsWith("encoder.", StringComparison.Ordinal));
        SafeTensors.Save(Path.Combine(directory, "residual.safetensors"), residual);
        Checkpoint.SaveModule(Decoder, Path.Combine(directory, "decoder.safetensors"));
        Checkpoint.SaveModule(DiT, Path.Combine(directory, "dit_ema.safetensors"));
        var stats = Normalizer.ToStateDict();
        try { SafeTensors.Save(Path.Combine(directory, "normalizer.safetensors"), stats); }
        finally { foreach (var t in stats.Values) t.Dispose(); }
        var manifest = new JsonObject
        {
            ["format"] = Format,
            ["version"] = FormatVersion,
            ["base"] = JsonSerializer.SerializeToNode(Base),
            ["base_name"] = Encoder.BaseEncoder.Name,
            ["encoder_config"] = JsonSerializer.SerializeToNode(Encoder.Config),
            ["alignment"] = Encoder.Statistics is { } s ? JsonSerializer.SerializeToNode(s.ToMetadata()) : null,
            ["decoder_config"] = JsonSerializer.SerializeToNode(Decoder.Config),
            ["dit_config"] = JsonSerializer.SerializeToNode(DiT.Config),
            ["class_names"] = new JsonArray(ClassNames.Select(n => (JsonNode)n).ToArray()),
        };
        File.WriteAllText(Path.Combine(directory, "manifest.json"), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    sealed class FeatureRow
    {
        public float[] Features { get; set; } = [];
    }

    /// <summary>
    /// Saves the generation half as an ML.NET model (<see cref="SvgModel.Save(MLContext, ITransformer, DataViewSchema?, string)"/>):
    /// an <see cref="SvgGenerator"/> holding copies of the DiT and the normaliser, decoding with the decoder, sampling
    /// with the official defaults (25 Euler steps, CFG 4). Load it with <c>SvgModel.Load(mlContext, path, out _)</c>
    /// and call <c>GenerateImages(labels)</c> or transform rows with a <c>Label</c> column. (The encoder half is not
    /// in it: ML.NET's SvgFeaturizer cannot save a base that runs at another resolution than the residual encoder.)
    /// </summary>
    public void SaveGenerator(string path)
    {
        var ml = new MLContext(seed: 0);
        int grid = DiT.Config.GridSize;
        var schema = SchemaDefinition.Create(typeof(FeatureRow));
        schema[nameof(FeatureRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, DiT.Config.InChannels, grid, grid);
        var features = ml.Data.LoadFromEnumerable(Array.Empty<FeatureRow>(), schema);
        var device = Decoder.parameters().First().device;
        using var decoder = new SvgDecoderEstimator(ml, new SvgDecoderEstimator.Options { InputColumnName = nameof(FeatureRow.Features), Decoder = Decoder })
            .Fit(features);
        var dit = new SvgDiT(DiT.Config);
        StateDict.Load(dit, DiT.state_dict(), strict: true, source: "quickstart DiT");
        using var generator = SvgGenerator.Create(ml, dit, new FeatureNormalizer(Normalizer.Mean, Normalizer.Std), new SvgGenerator.Options(), decoder);
        SvgModel.Save(ml, generator, inputSchema: null, path);
        Decoder.to(device);   // the decoder transformer moved the shared decoder to the ML.NET context's device
    }

    /// <summary>Reads a folder written by <see cref="Save"/> (rebuilding the base encoder) onto <paramref name="device"/>.</summary>
    public static QuickstartModel Load(string directory, Device? device = null)
    {
        string manifestPath = Path.Combine(directory, "manifest.json");
        if (!File.Exists(manifestPath)) throw new FileNotFoundException($"{directory} holds no quickstart model (no manifest.json).", manifestPath);
        var manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!.AsObject();
        if (manifest["format"]?.GetValue<string>() != Format) throw new InvalidDataException($"{manifestPath} is not a {Format} manifest.");
        T Read<T>(string key) => manifest[key].Deserialize<T>() ?? throw new InvalidDataException($"{manifestPath} lacks '{key}'.");
        var spec = Read<BaseSpec>("base");
        var encoderConfig = Read<SvgEncoderConfig>("encoder_config");
        var alignment = manifest["alignment"] is { } a ? AlignmentStatistics.FromMetadata(a.Deserialize<Dictionary<string, string>>()!) : null;
        var classNames = Read<string[]>("class_names");

        SvgEncoder encoder = spec.Kind == BaseSpec.SvgAutoencoderKind
            ? new SvgEncoder(QuickstartPipeline.LoadOfficialAutoencoder(spec.WeightsPath!).Encoder.BaseEncoder, encoderConfig)
            : new SvgEncoder(Architecture.BuildBase(spec), encoderConfig);
        encoder.Statistics = alignment;
        string residualPath = Path.Combine(directory, "residual.safetensors");
        var residual = SafeTensors.Load(residualPath).Tensors;
        try
        {
            var expected = encoder.state_dict().Keys.Where(k => !k.StartsWith("encoder.", StringComparison.Ordinal)).ToHashSet();
            if (!expected.SetEquals(residual.Keys))
                throw new CheckpointMismatchException(residualPath, expected.Except(residual.Keys).ToList(), residual.Keys.Except(expected).ToList(), []);
            StateDict.Load(encoder, residual, strict: false, source: residualPath);
        }
        finally { foreach (var t in residual.Values) t.Dispose(); }

        var decoder = new LdmDecoder(Read<LdmDecoderConfig>("decoder_config"));
        Checkpoint.LoadModule(decoder, Path.Combine(directory, "decoder.safetensors"));
        var dit = new SvgDiT(Read<SvgDiTConfig>("dit_config"));
        Checkpoint.LoadModule(dit, Path.Combine(directory, "dit_ema.safetensors"));
        var stats = SafeTensors.Load(Path.Combine(directory, "normalizer.safetensors")).Tensors;
        FeatureNormalizer normalizer;
        try { normalizer = FeatureNormalizer.FromStateDict(stats); }
        finally { foreach (var t in stats.Values) t.Dispose(); }

        if (device is not null)
        {
            encoder.to(device);
            decoder.to(device);
            dit.to(device);
        }
        encoder.eval();
        decoder.eval();
        dit.eval();
        return new QuickstartModel(spec, encoder, decoder, dit, normalizer, classNames, owns: true);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (!_owns) return;
        DiT.Dispose();
        Decoder.Dispose();
        Normalizer.Dispose();
        Encoder.Dispose();
    }
}
