using System.Text.RegularExpressions;
using Svg.ML.Checkpoints;
using Svg.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Training;

/// <summary>
/// LPIPS with VGG16 (Zhang et al. 2018; the <c>lpips</c> package and taming-transformers'
/// <c>taming/modules/losses/lpips.py</c>, used by SVG's autoencoder loss), for images in [-1, 1]:
/// <code>
/// x̃ = (x − shift) / scale                                     scaling_layer
/// f_k = VGG16 relu{1_2, 2_2, 3_3, 4_3, 5_3}(x̃)                net.slice1 … net.slice5
/// f̂_k = f_k / (‖f_k‖₂ over channels + 1e-10)
/// d = Σ_k mean_{h,w} lin_k((f̂_k(x) − f̂_k(y))²)                lin_k: 1×1 conv C_k → 1, no bias
/// </code>
/// Output [B, 1, 1, 1]. Keys follow the <c>lpips</c> package: <c>scaling_layer.shift|scale</c>,
/// <c>net.slice{1..5}.{i}.weight|bias</c> (i = torchvision's <c>vgg16().features</c> index) and
/// <c>lin{0..4}.model.1.weight</c>. No weights ship with this library: load them from user-supplied files with
/// <see cref="Load"/>. The module is frozen (no gradients to its weights) and meant to stay in evaluation mode.
/// </summary>
public sealed class Lpips : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>Channels of the five VGG16 feature maps.</summary>
    public static IReadOnlyList<int> FeatureChannels { get; } = [64, 128, 256, 512, 512];

    /// <summary>torchvision <c>vgg16().features</c> index ranges of the five slices: [start, end).</summary>
    public static IReadOnlyList<(int Start, int End)> SliceRanges { get; } = [(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)];

    /// <summary>Where the <c>lpips</c> package keeps its VGG linear heads (inside the installed Python package).</summary>
    public const string LinearWeightsHint = "the lpips package's lpips/weights/v0.1/vgg.pth (keys lin0.model.1.weight … lin4.model.1.weight)";

    /// <summary>The torchvision ImageNet VGG16 weights file.</summary>
    public const string VggWeightsHint = "torchvision's vgg16-397923af.pth (keys features.{i}.weight|bias)";

#pragma warning disable IDE1006
    readonly LpipsScalingLayer scaling_layer;
    readonly LpipsVgg16 net;
    readonly LpipsLinear lin0, lin1, lin2, lin3, lin4;
#pragma warning restore IDE1006
    readonly LpipsLinear[] _lins;

    /// <summary>Builds the architecture with untrained weights (load real ones with <see cref="Load"/>).</summary>
    /// <param name="useDropout">Keep the <c>Dropout</c> before each linear head (both reference implementations do;
    /// it only acts in training mode).</param>
    public Lpips(bool useDropout = true) : base(nameof(Lpips))
    {
        TorchRuntime.EnsureInitialized();
        scaling_layer = new LpipsScalingLayer();
        net = new LpipsVgg16();
        lin0 = new LpipsLinear(FeatureChannels[0], useDropout);
        lin1 = new LpipsLinear(FeatureChannels[1], useDropout);
        lin2 = new LpipsLinear(FeatureChannels[2], useDropout);
        lin3 = new LpipsLinear(FeatureChannels[3], useDropout);
        lin4 = new LpipsLinear(FeatureChannels[4], useDropout);
        _lins = [lin0, lin1, lin2, lin3, lin4];
        RegisterComponents();
        foreach (var p in parameters()) p.requires_grad = false;
        eval();
    }

    /// <summary>
    /// Loads LPIPS weights from user-supplied files (torch.save <c>.pth</c> or safetensors):
    /// <paramref name="linearWeightsPath"/> holds the linear heads (<see cref="LinearWeightsHint"/>; a file with the
    /// whole LPIPS state dict, <c>net.*</c> included, also works), <paramref name="vggWeightsPath"/> the VGG16
    /// (<see cref="VggWeightsHint"/>, or <c>net.slice*</c> keys); it may be null when the first file already holds
    /// <c>net.*</c>. Missing files give a <see cref="FileNotFoundException"/> naming what is needed; missing keys a
    /// <see cref="CheckpointMismatchException"/>.
    /// </summary>
    public static Lpips Load(string linearWeightsPath, string? vggWeightsPath = null)
    {
        TorchRuntime.EnsureInitialized();
        RequireFile(linearWeightsPath, "LPIPS linear-head weights", LinearWeightsHint);
        if (vggWeightsPath is not null) RequireFile(vggWeightsPath, "VGG16 weights for LPIPS", VggWeightsHint);

        var lpips = new Lpips();
        var weights = new Dictionary<string, Tensor>();
        var owned = new List<Tensor>();
        try
        {
            var linear = Checkpoint.ReadTensors(linearWeightsPath);
            owned.AddRange(linear.Values);
            foreach (var (key, value) in linear) AddMapped(weights, key, value);
            if (vggWeightsPath is not null)
            {
                var vgg = Checkpoint.ReadTensors(vggWeightsPath);
                owned.AddRange(vgg.Values);
                foreach (var (key, value) in vgg) AddMapped(weights, key, value);
            }
            if (!weights.Keys.Any(k => k.StartsWith("net.", StringComparison.Ordinal)))
                throw new FileNotFoundException(
                    $"LPIPS needs VGG16 weights: '{linearWeightsPath}' holds no net.* keys and no VGG file was given; supply {VggWeightsHint}.");
            // The scaling constants are buffers that the lpips files do not always contain: keep the built-in values.
            foreach (var (key, value) in lpips.state_dict())
                if (key.StartsWith("scaling_layer.", StringComparison.Ordinal) && !weights.ContainsKey(key)) weights[key] = value;
            string source = vggWeightsPath is null ? linearWeightsPath : $"{linearWeightsPath} + {vggWeightsPath}";
            StateDict.Load(lpips, weights, strict: true, source);
            return lpips;
        }
        catch
        {
            lpips.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in owned) t.Dispose();
        }
    }

    static readonly Regex TorchvisionFeature = new(@"^features\.(\d+)\.(weight|bias)$", RegexOptions.CultureInvariant);
    static readonly Regex LinsList = new(@"^lins\.(\d)\.(model\.1\.weight)$", RegexOptions.CultureInvariant);

    /// <summary>Maps torchvision <c>features.{i}.*</c> to <c>net.slice{s}.{i}.*</c> and the <c>lins.{k}</c> aliases to
    /// <c>lin{k}</c>; keeps <c>net.*</c>, <c>lin{k}.*</c> and <c>scaling_layer.*</c>; ignores the rest (classifier).</summary>
    static void AddMapped(Dictionary<string, Tensor> weights, string key, Tensor value)
    {
        if (TorchvisionFeature.Match(key) is { Success: true } f)
        {
            int index = int.Parse(f.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            int slice = SliceOf(index);
            if (slice > 0) weights[$"net.slice{slice}.{index}.{f.Groups[2].Value}"] = value;
            return;
        }
        if (LinsList.Match(key) is { Success: true } l)
        {
            weights.TryAdd($"lin{l.Groups[1].Value}.{l.Groups[2].Value}", value);
            return;
        }
        if (key.StartsWith("net.", StringComparison.Ordinal) || key.StartsWith("scaling_layer.", StringComparison.Ordinal) ||
            Regex.IsMatch(key, @"^lin\d\.", RegexOptions.CultureInvariant))
            weights[key] = value;
    }

    /// <summary>The slice (1…5) holding torchvision feature index <paramref name="index"/>, or 0 when unused.</summary>
    public static int SliceOf(int index)
    {
        for (int s = 0; s < SliceRanges.Count; s++)
            if (index >= SliceRanges[s].Start && index < SliceRanges[s].End) return s + 1;
        return 0;
    }

    static void RequireFile(string path, string what, string hint)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"{what} not found: '{path}'. LPIPS weights are not bundled and never downloaded; supply {hint}. " +
                "Without them, train with the L1 loss alone (AutoencoderTrainingOptions.Lpips = null).", path);
    }

    /// <summary>LPIPS distance [B, 1, 1, 1] between images <paramref name="input"/> and <paramref name="target"/> in [-1, 1].</summary>
    public override Tensor forward(Tensor input, Tensor target)
    {
        using var scope = NewDisposeScope();
        var outs0 = net.Features(scaling_layer.call(input));
        var outs1 = net.Features(scaling_layer.call(target));
        Tensor? value = null;
        for (int k = 0; k < _lins.Length; k++)
        {
            var diff = (NormalizeChannels(outs0[k]) - NormalizeChannels(outs1[k])).pow(2);
            var res = _lins[k].call(diff).mean([2, 3], keepdim: true);   // spatial average
            value = value is null ? res : value + res;
        }
        return value!.MoveToOuterDisposeScope();
    }

    /// <summary>x / (‖x‖₂ over dim 1 + eps) (the reference <c>normalize_tensor</c>).</summary>
    public static Tensor NormalizeChannels(Tensor x, double eps = 1e-10)
    {
        using var scope = NewDisposeScope();
        var norm = x.pow(2).sum([1], keepdim: true).sqrt();
        return (x / (norm + eps)).MoveToOuterDisposeScope();
    }
}

/// <summary>LPIPS input scaling: <c>(x − shift) / scale</c> with the reference constants (buffers).</summary>
public sealed class LpipsScalingLayer : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    readonly Tensor shift;
    readonly Tensor scale;
#pragma warning restore IDE1006

    public LpipsScalingLayer() : base("ScalingLayer")
    {
        shift = tensor(new[] { -.030f, -.088f, -.188f }).view(1, 3, 1, 1).DetachFromDisposeScope();
        scale = tensor(new[] { .458f, .448f, .450f }).view(1, 3, 1, 1).DetachFromDisposeScope();
        RegisterComponents();   // Tensor fields become buffers
    }

    public override Tensor forward(Tensor x) => (x - shift) / scale;
}

/// <summary>VGG16 <c>features[0:30]</c> split into the five LPIPS slices, layers named by their torchvision index.</summary>
public sealed class LpipsVgg16 : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    readonly Sequential slice1, slice2, slice3, slice4, slice5;
#pragma warning restore IDE1006
    readonly Sequential[] _slices;

    public LpipsVgg16() : base("vgg16")
    {
        // torchvision vgg16 "D" configuration: 64,64,M,128,128,M,256,256,256,M,512,512,512,M,512,512,512,M.
        var layers = new List<nn.Module<Tensor, Tensor>>();
        int inChannels = 3;
        foreach (int v in new[] { 64, 64, -1, 128, 128, -1, 256, 256, 256, -1, 512, 512, 512, -1, 512, 512, 512 })
        {
            if (v < 0) { layers.Add(nn.MaxPool2d(2, 2)); continue; }
            layers.Add(nn.Conv2d(inChannels, v, 3, padding: 1));
            layers.Add(nn.ReLU());
            inChannels = v;
        }
        Sequential Slice(int s) => nn.Sequential(Enumerable.Range(Lpips.SliceRanges[s].Start, Lpips.SliceRanges[s].End - Lpips.SliceRanges[s].Start)
            .Select(i => (i.ToString(System.Globalization.CultureInfo.InvariantCulture), layers[i])));
        slice1 = Slice(0); slice2 = Slice(1); slice3 = Slice(2); slice4 = Slice(3); slice5 = Slice(4);
        _slices = [slice1, slice2, slice3, slice4, slice5];
        RegisterComponents();
    }

    /// <summary>The outputs of the five slices (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3).</summary>
    public Tensor[] Features(Tensor x)
    {
        var outs = new Tensor[_slices.Length];
        for (int s = 0; s < _slices.Length; s++) x = outs[s] = _slices[s].call(x);
        return outs;
    }

    /// <summary>relu5_3.</summary>
    public override Tensor forward(Tensor x) => Features(x)[^1];
}

/// <summary>An LPIPS linear head: <c>model = Sequential(Dropout, Conv2d(C, 1, 1, bias = false))</c>.</summary>
public sealed class LpipsLinear : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    readonly Sequential model;
#pragma warning restore IDE1006

    public LpipsLinear(int channels, bool useDropout) : base("NetLinLayer")
    {
        var conv = nn.Conv2d(channels, 1, 1, stride: 1, padding: 0L, bias: false);
        // Index 1 is the conv in both variants' keys (the lpips files always name it model.1).
        model = useDropout
            ? nn.Sequential(("0", (nn.Module<Tensor, Tensor>)nn.Dropout()), ("1", conv))
            : nn.Sequential(("1", (nn.Module<Tensor, Tensor>)conv));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => model.call(x);
}
