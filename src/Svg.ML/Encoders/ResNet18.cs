using Svg.ML.Checkpoints;
using Svg.ML.Encoders.Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Svg.ML.Encoders;

/// <summary>
/// Which ResNet stage output serves as the feature grid of <see cref="ResNet18"/> as an <see cref="IFrozenEncoder"/>.
/// </summary>
public enum ResNetGridLayer
{
    /// <summary>Output of <c>layer3</c>: [B, 256, H/16, W/16] (ONNX value <c>ReLU347_Output_0</c>). The default grid for SVG.</summary>
    Stage3 = 3,
    /// <summary>Output of <c>layer4</c>: [B, 512, H/32, W/32] (ONNX value <c>ReLU393_Output_0</c>).</summary>
    Stage4 = 4,
}

/// <summary>
/// Structure of a basic-block ResNet as exported by CNTK. Paddings are in ONNX order
/// [top, left, bottom, right]; CNTK pads stride-2 layers asymmetrically (more at the start).
/// </summary>
/// <param name="Layers">Basic blocks per stage (4 stages).</param>
/// <param name="Widths">Channels per stage.</param>
/// <param name="InChannels">Input channels.</param>
/// <param name="StemKernel">Kernel of the stride-2 stem convolution.</param>
/// <param name="StemConvPads">Paddings of the stem convolution.</param>
/// <param name="StemPoolPads">Paddings of the 3×3 stride-2 stem max pool (padding value −∞).</param>
/// <param name="StridedConvPads">Paddings of the 3×3 stride-2 convolution that opens stages 2–4.</param>
/// <param name="BatchNormEpsilon">ε of every batch normalisation.</param>
/// <param name="ImageSize">Input size of the exported graph (and of its mean image).</param>
public sealed record ResNetConfig(
    int[] Layers,
    int[] Widths,
    int InChannels,
    int StemKernel,
    int[] StemConvPads,
    int[] StemPoolPads,
    int[] StridedConvPads,
    double BatchNormEpsilon,
    int ImageSize)
{
    /// <summary>
    /// ML.NET's <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> 0.23.1 (<c>ResNet18.onnx</c>, CNTK 2.6 export):
    /// stages of [2, 2, 2, 3] basic blocks (sic: the graph has three blocks in the last stage), widths
    /// [64, 128, 256, 512], 1×1 stride-2 projection shortcuts, pads [3,3,2,2] (stem conv) and [1,1,0,0]
    /// (stem pool, strided 3×3 convs), ε = 1e-5, 224×224 input.
    /// </summary>
    public static ResNetConfig MlNetResNet18 => new(
        Layers: new[] { 2, 2, 2, 3 },
        Widths: new[] { 64, 128, 256, 512 },
        InChannels: 3,
        StemKernel: 7,
        StemConvPads: new[] { 3, 3, 2, 2 },
        StemPoolPads: new[] { 1, 1, 0, 0 },
        StridedConvPads: new[] { 1, 1, 0, 0 },
        BatchNormEpsilon: 1e-5,
        ImageSize: 224);

    /// <summary>A compact description for cache keys and reports.</summary>
    public string Describe() =>
        $"layers=[{string.Join(",", Layers)}] widths=[{string.Join(",", Widths)}] in={InChannels} stem={StemKernel} " +
        $"stemPads=[{string.Join(",", StemConvPads)}] poolPads=[{string.Join(",", StemPoolPads)}] " +
        $"stridedPads=[{string.Join(",", StridedConvPads)}] eps={BatchNormEpsilon:R} size={ImageSize}";
}

/// <summary>The three outputs of <see cref="ResNet18.Features"/>.</summary>
/// <param name="Stage3">[B, 256, H/16, W/16].</param>
/// <param name="Stage4">[B, 512, H/32, W/32].</param>
/// <param name="Pooled">[B, 512]: global average of <paramref name="Stage4"/> (ML.NET's DnnFeaturizeImage output at 224×224).</param>
public sealed record ResNetFeatures(Tensor Stage3, Tensor Stage4, Tensor Pooled);

/// <summary>
/// Batch normalisation in its inference form, as exported: y = (x − running_mean) / √(running_var + ε) · weight + bias.
/// Always uses the running statistics, whatever the module's training flag (the encoder is frozen).
/// </summary>
public sealed class FrozenBatchNorm2d : nn.Module<Tensor, Tensor>
{
    readonly double _eps;
    public Parameter weight;
    public Parameter bias;
    public Tensor running_mean;
    public Tensor running_var;

    public FrozenBatchNorm2d(long channels, double eps) : base(nameof(FrozenBatchNorm2d))
    {
        _eps = eps;
        weight = nn.Parameter(ones(channels), requires_grad: false);
        bias = nn.Parameter(zeros(channels), requires_grad: false);
        running_mean = zeros(channels);
        running_var = ones(channels);
        // Weights live as long as the module, not as long as a dispose scope it happens to be built in.
        foreach (var t in new[] { weight, bias, running_mean, running_var }) t.DetachFromDisposeScope();
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) =>
        F.batch_norm(x, running_mean, running_var, weight, bias, training: false, eps: _eps);
}

/// <summary>
/// Convolution without bias whose padding follows an ONNX pads attribute [top, left, bottom, right]:
/// symmetric pads go to the convolution, asymmetric ones are applied first with a zero <c>F.pad</c>.
/// Parameter name: <c>weight</c> (so a block's keys read <c>conv1.weight</c>).
/// </summary>
public sealed class PaddedConv2d : nn.Module<Tensor, Tensor>
{
    readonly long[]? _explicitPad; // torch order: left, right, top, bottom
    readonly long _stride, _padding;
    public Parameter weight;

    public PaddedConv2d(long inChannels, long outChannels, long kernel, long stride, int[] pads) : base(nameof(PaddedConv2d))
    {
        if (pads.Length != 4) throw new ArgumentException("pads must be [top, left, bottom, right].", nameof(pads));
        _stride = stride;
        if (pads.All(p => p == pads[0])) _padding = pads[0];
        else _explicitPad = TorchPad(pads);
        weight = nn.Parameter(empty(outChannels, inChannels, kernel, kernel), requires_grad: false);
        weight.DetachFromDisposeScope(); // lives as long as the module
        using (no_grad()) nn.init.kaiming_uniform_(weight, Math.Sqrt(5));
        RegisterComponents();
    }

    /// <summary>ONNX pads [top, left, bottom, right] → <c>F.pad</c> order for the last two dims [left, right, top, bottom].</summary>
    public static long[] TorchPad(int[] onnxPads) => new long[] { onnxPads[1], onnxPads[3], onnxPads[0], onnxPads[2] };

    /// <summary>Kernel size.</summary>
    public long Kernel => weight.shape[2];

    /// <summary>Stride.</summary>
    public long Stride => _stride;

    /// <summary>The effective pads, ONNX order [top, left, bottom, right].</summary>
    public int[] Pads => _explicitPad is { } p
        ? new[] { (int)p[2], (int)p[0], (int)p[3], (int)p[1] }
        : new[] { (int)_padding, (int)_padding, (int)_padding, (int)_padding };

    public override Tensor forward(Tensor x)
    {
        if (_explicitPad is null)
            return F.conv2d(x, weight, strides: new[] { _stride, _stride }, padding: new[] { _padding, _padding });
        using var padded = F.pad(x, _explicitPad);
        return F.conv2d(padded, weight, strides: new[] { _stride, _stride });
    }
}

/// <summary>
/// ResNet basic block: out = ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + shortcut(x)), with
/// shortcut = downsample (1×1 stride-2 conv + BN) when the block changes resolution or width, else identity.
/// </summary>
public sealed class BasicBlock : nn.Module<Tensor, Tensor>
{
    public PaddedConv2d conv1;
    public FrozenBatchNorm2d bn1;
    public PaddedConv2d conv2;
    public FrozenBatchNorm2d bn2;
    public nn.Module<Tensor, Tensor>? downsample;

    public BasicBlock(int inChannels, int channels, int stride, int[] stridedPads, double eps) : base(nameof(BasicBlock))
    {
        conv1 = new PaddedConv2d(inChannels, channels, 3, stride, stride == 1 ? new[] { 1, 1, 1, 1 } : stridedPads);
        bn1 = new FrozenBatchNorm2d(channels, eps);
        conv2 = new PaddedConv2d(channels, channels, 3, 1, new[] { 1, 1, 1, 1 });
        bn2 = new FrozenBatchNorm2d(channels, eps);
        if (stride != 1 || inChannels != channels)
            downsample = nn.Sequential(
                new PaddedConv2d(inChannels, channels, 1, stride, new[] { 0, 0, 0, 0 }),
                new FrozenBatchNorm2d(channels, eps));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = F.relu(bn1.forward(conv1.forward(x)));
        h = bn2.forward(conv2.forward(h));
        var shortcut = downsample is null ? x : downsample.forward(x);
        return F.relu(h + shortcut).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// ImageNet ResNet18 of ML.NET's <c>DnnImageFeaturizer</c> (NuGet <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> 0.23.1,
/// a CNTK export), reimplemented in TorchSharp and loaded from the package's ONNX files, so it runs (and differentiates)
/// without ONNX Runtime. Reproduces the graph exactly: asymmetric CNTK paddings, inference-form batch norm, 1×1 stride-2
/// projection shortcuts, and the preprocessing of <c>ResNetPreprocess.onnx</c> (RGB → BGR in 0–255 minus a mean image).
/// Parameter names follow torchvision (<c>conv1</c>, <c>bn1</c>, <c>layer{1..4}.{i}.conv1</c>, …, <c>downsample.0/1</c>) plus the
/// buffer <c>mean_image</c>; <see cref="OnnxResNetImporter"/> maps the ONNX initializers onto them by walking the graph.
/// </summary>
/// <remarks>
/// Input sizes other than 224: the mean image (224×224) is resized bilinearly (antialiased when shrinking) to the input
/// size; it is smooth (per-channel std ≈ 3–6 of 0–255), so this stays close to the per-channel mean. The pooled vector is
/// always the global average of stage 4 (the ONNX graph's fixed 7×7 average pool equals it only at 224×224).
/// </remarks>
public sealed class ResNet18 : nn.Module<Tensor, Tensor>, IFrozenEncoder
{
    /// <summary>Version of the NuGet package whose ONNX files this class reads by default.</summary>
    public const string PackageVersion = "0.23.1";

    /// <summary>Relative path of the network inside a <c>DnnImageModels</c> folder.</summary>
    public const string ModelRelativePath = "ResNet18Onnx/ResNet18.onnx";

    /// <summary>Relative path of the preprocessing graph (mean image) inside a <c>DnnImageModels</c> folder.</summary>
    public const string PreprocessRelativePath = "ResNetPrepOnnx/ResNetPreprocess.onnx";

    public PaddedConv2d conv1;
    public FrozenBatchNorm2d bn1;
    public nn.Module<Tensor, Tensor> layer1, layer2, layer3, layer4;
    public Tensor mean_image;

    /// <summary>The structure.</summary>
    public ResNetConfig Config { get; }

    /// <summary>The stage used by <see cref="EncodeGrid"/>.</summary>
    public ResNetGridLayer GridLayer { get; }

    /// <summary>Builds the network with random weights (load real ones with <see cref="FromOnnx"/> or <see cref="StateDict.Load"/>).</summary>
    public ResNet18(ResNetConfig config, ResNetGridLayer gridLayer = ResNetGridLayer.Stage3) : base(nameof(ResNet18))
    {
        Runtime.TorchRuntime.EnsureInitialized();
        if (config.Layers.Length != 4 || config.Widths.Length != 4) throw new ArgumentException("A ResNet has 4 stages.", nameof(config));
        Config = config;
        GridLayer = gridLayer;
        double eps = config.BatchNormEpsilon;
        conv1 = new PaddedConv2d(config.InChannels, config.Widths[0], config.StemKernel, 2, config.StemConvPads);
        bn1 = new FrozenBatchNorm2d(config.Widths[0], eps);
        var stages = new nn.Module<Tensor, Tensor>[4];
        int inC = config.Widths[0];
        for (int s = 0; s < 4; s++)
        {
            var blocks = new nn.Module<Tensor, Tensor>[config.Layers[s]];
            for (int b = 0; b < blocks.Length; b++)
            {
                int stride = s > 0 && b == 0 ? 2 : 1;
                blocks[b] = new BasicBlock(inC, config.Widths[s], stride, config.StridedConvPads, eps);
                inC = config.Widths[s];
            }
            stages[s] = nn.Sequential(blocks);
        }
        (layer1, layer2, layer3, layer4) = (stages[0], stages[1], stages[2], stages[3]);
        mean_image = zeros(1, config.InChannels, config.ImageSize, config.ImageSize).DetachFromDisposeScope();
        RegisterComponents();
        eval();
    }

    /// <summary>
    /// Loads the network from ML.NET's <c>ResNet18.onnx</c> and the mean image from <c>ResNetPreprocess.onnx</c>.
    /// The graph is checked against <paramref name="config"/> (default <see cref="ResNetConfig.MlNetResNet18"/>) node by node.
    /// </summary>
    public static ResNet18 FromOnnx(string resnetOnnxPath, string preprocessOnnxPath, ResNetGridLayer gridLayer = ResNetGridLayer.Stage3, ResNetConfig? config = null)
    {
        config ??= ResNetConfig.MlNetResNet18;
        var model = new ResNet18(config, gridLayer);
        var import = OnnxResNetImporter.Import(OnnxModelReader.Read(resnetOnnxPath).Graph, OnnxModelReader.Read(preprocessOnnxPath).Graph, config);
        try { StateDict.Load(model, import.Weights, strict: true, source: resnetOnnxPath); }
        finally { foreach (var t in import.Weights.Values) t.Dispose(); }
        return model;
    }

    /// <summary>Loads from a <c>DnnImageModels</c> folder (default: <see cref="FindModelDirectory"/>).</summary>
    public static ResNet18 FromModelDirectory(string? dnnImageModelsDirectory = null, ResNetGridLayer gridLayer = ResNetGridLayer.Stage3)
    {
        string dir = dnnImageModelsDirectory ?? FindModelDirectory();
        return FromOnnx(Path.Combine(dir, ModelRelativePath), Path.Combine(dir, PreprocessRelativePath), gridLayer);
    }

    /// <summary>
    /// The folders searched by <see cref="FindModelDirectory"/>, in order: the application's output <c>DnnImageModels</c> folder
    /// (where the NuGet package copies its files), then the package inside the NuGet global-packages folder
    /// (<c>NUGET_PACKAGES</c> or <c>~/.nuget/packages</c>).
    /// </summary>
    public static IReadOnlyList<string> ModelDirectoryCandidates()
    {
        var list = new List<string> { Path.Combine(AppContext.BaseDirectory, "DnnImageModels") };
        string? nugetRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(nugetRoot))
            nugetRoot = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        list.Add(Path.Combine(nugetRoot, "microsoft.ml.dnnimagefeaturizer.resnet18", PackageVersion, "tools", "DnnImageModels"));
        return list;
    }

    /// <summary>The first of <see cref="ModelDirectoryCandidates"/> holding both ONNX files.</summary>
    /// <exception cref="FileNotFoundException">None holds them; the message lists where it looked.</exception>
    public static string FindModelDirectory()
    {
        var candidates = ModelDirectoryCandidates();
        foreach (var dir in candidates)
            if (File.Exists(Path.Combine(dir, ModelRelativePath)) && File.Exists(Path.Combine(dir, PreprocessRelativePath)))
                return dir;
        throw new FileNotFoundException(
            $"ResNet18 ONNX files not found. Reference the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 {PackageVersion} " +
            $"(Svg.ML copies its DnnImageModels folder to the output) or pass the folder explicitly. Searched: {string.Join("; ", candidates)}.");
    }

    /// <inheritdoc/>
    public string Name => "ResNet18 (ImageNet, ML.NET DnnImageFeaturizer)";

    /// <inheritdoc/>
    public int Channels => GridLayer == ResNetGridLayer.Stage3 ? Config.Widths[2] : Config.Widths[3];

    /// <inheritdoc/>
    public int PatchSize => GridLayer == ResNetGridLayer.Stage3 ? 16 : 32;

    /// <inheritdoc/>
    public int DefaultImageSize => Config.ImageSize;

    /// <inheritdoc/>
    public nn.Module Module => this;

    /// <summary>Channels of the pooled vector.</summary>
    public int PooledChannels => Config.Widths[3];

    /// <summary>
    /// RGB in [0, 1], [B, 3, H, W] → the network input: BGR in 0–255 minus the mean image
    /// (resized to H×W when H×W differs from 224×224, see the class remarks).
    /// </summary>
    public Tensor Preprocess(Tensor rgb01)
    {
        using var scope = NewDisposeScope();
        var bgr255 = rgb01.flip(1) * 255f;
        return (bgr255 - MeanImageFor(rgb01.shape[2], rgb01.shape[3]).to(bgr255.dtype, bgr255.device)).MoveToOuterDisposeScope();
    }

    /// <summary>The mean image at <paramref name="height"/>×<paramref name="width"/>, [1, 3, H, W].</summary>
    public Tensor MeanImageFor(long height, long width)
    {
        if (height == mean_image.shape[2] && width == mean_image.shape[3]) return mean_image.alias();
        bool shrink = height < mean_image.shape[2] || width < mean_image.shape[3];
        return F.interpolate(mean_image, new[] { height, width }, mode: InterpolationMode.Bilinear, align_corners: false, antialias: shrink);
    }

    /// <summary>Preprocessed input → the <see cref="GridLayer"/> stage map.</summary>
    public Tensor EncodeGrid(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = Stage3(input);
        if (GridLayer == ResNetGridLayer.Stage4) h = layer4.forward(h);
        return h.MoveToOuterDisposeScope();
    }

    /// <summary>Preprocessed input → pooled features [B, 512] (global average of stage 4).</summary>
    public Tensor EncodePooled(Tensor input)
    {
        using var scope = NewDisposeScope();
        return layer4.forward(Stage3(input)).mean(new long[] { 2, 3 }).MoveToOuterDisposeScope();
    }

    /// <summary>Preprocessed input → stage 3 map, stage 4 map and pooled vector in one pass.</summary>
    public ResNetFeatures Features(Tensor input)
    {
        using var scope = NewDisposeScope();
        var s3 = Stage3(input);
        var s4 = layer4.forward(s3);
        var pooled = s4.mean(new long[] { 2, 3 });
        return new ResNetFeatures(s3.MoveToOuterDisposeScope(), s4.MoveToOuterDisposeScope(), pooled.MoveToOuterDisposeScope());
    }

    /// <summary>Same as <see cref="EncodeGrid"/>.</summary>
    public override Tensor forward(Tensor input) => EncodeGrid(input);

    Tensor Stage3(Tensor input)
    {
        var h = F.relu(bn1.forward(conv1.forward(input)));
        h = F.pad(h, PaddedConv2d.TorchPad(Config.StemPoolPads), value: double.NegativeInfinity);
        h = F.max_pool2d(h, new long[] { 3, 3 }, new long[] { 2, 2 });
        h = layer1.forward(h);
        h = layer2.forward(h);
        return layer3.forward(h);
    }
}
