using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using Svg.ML.Encoders;
using Svg.ML.Encoders.Onnx;
using Svg.ML.Tests.Data;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Encoders;

/// <summary>
/// The TorchSharp ResNet18 against ONNX Runtime running ML.NET's own ResNet18.onnx, on real photographs
/// (bundled in data/images from scikit-image). Both sides get the same 224×224 pixels: ML.NET's LoadImages → ResizeImages(224, 224)
/// → ExtractPixels (planar RGB, 0–255), the input ML.NET's DnnFeaturizeImage expects.
/// </summary>
public class ResNet18Tests : IClassFixture<ResNet18Tests.Fixture>
{
    /// <summary>Shared by the tests of this class: the model loaded once, and ML.NET's run on the photos, done once.</summary>
    public sealed class Fixture : IDisposable
    {
        readonly Lazy<ResNet18> _model = new(() => ResNet18.FromModelDirectory());
        readonly Lazy<(float[][] Pixels, float[][] Features)> _mlnet = new(RunMlNet);
        public ResNet18 Model => _model.Value;
        public (float[][] Pixels, float[][] Features) MlNet => _mlnet.Value;
        public void Dispose() { if (_model.IsValueCreated) _model.Value.Dispose(); }
    }

    static readonly string[] Photos = { "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg" };
    const double Tolerance = 1e-4;

    readonly ITestOutputHelper _out;
    readonly Fixture _fx;
    public ResNet18Tests(ITestOutputHelper output, Fixture fixture) => (_out, _fx) = (output, fixture);

    static string ModelDir => ResNet18.FindModelDirectory();

    sealed class ImageRow { public string ImagePath { get; set; } = ""; }

    /// <summary>ML.NET pipeline: pixels (as fed to DnnFeaturizeImage) and its 512-d ResNet18 features, per photo.</summary>
    static (float[][] Pixels, float[][] Features) RunMlNet()
    {
        var ml = new MLContext(seed: 0);
        var rows = Photos.Select(p => new ImageRow { ImagePath = TestData.SkimagePhoto(p) }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.LoadImages("Image", imageFolder: null, inputColumnName: nameof(ImageRow.ImagePath))
            .Append(ml.Transforms.ResizeImages("Image", imageWidth: 224, imageHeight: 224))
            .Append(ml.Transforms.ExtractPixels("Pixels", "Image"))
            .Append(ml.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), "Pixels"));
        var result = pipeline.Fit(data).Transform(data);
        var pixels = result.GetColumn<float[]>("Pixels").ToArray();
        var features = result.GetColumn<float[]>("Features").ToArray();
        return (pixels, features);
    }

    static Tensor PixelsToRgb01(float[][] pixels) =>
        stack(pixels.Select(p => tensor(p).view(3, 224, 224)).ToArray()) / 255f;

    [Fact]
    public void OnnxReader_ReadsTheCntkGraph_AndTheImporterFindsTheStages()
    {
        var model = OnnxModelReader.Read(Path.Combine(ModelDir, ResNet18.ModelRelativePath));
        Assert.Equal("CNTK", model.ProducerName);
        Assert.Equal(8, model.OpsetImports[""]);
        var g = model.Graph;
        Assert.Equal("Input247", Assert.Single(g.Inputs).Name);
        Assert.Equal(new long[] { 1, 3, 224, 224 }, g.Inputs[0].Shape);
        Assert.Equal("Pooling395_Output_0", Assert.Single(g.Outputs).Name);
        // 1 stem + 2·(2+2+2+3) block convs + 3 projections; a BN after each.
        Assert.Equal(22, g.Nodes.Count(n => n.OpType == "Conv"));
        Assert.Equal(22, g.Nodes.Count(n => n.OpType == "BatchNormalization"));
        Assert.Equal(110, g.Initializers.Count);
        Assert.Equal(9, g.Nodes.Count(n => n.OpType == "Add"));
        var stem = g.Nodes.First(n => n.OpType == "Conv");
        Assert.Equal(new long[] { 3, 3, 2, 2 }, stem.GetInts("pads"));
        Assert.Equal(new long[] { 2, 2 }, stem.GetInts("strides"));
        Assert.Equal(new long[] { 64, 3, 7, 7 }, g.Initializers[stem.Inputs[1]].Dims);
        var bn = g.Nodes.First(n => n.OpType == "BatchNormalization");
        Assert.Equal(1e-5f, bn.GetFloat("epsilon"));

        var prep = OnnxModelReader.Read(Path.Combine(ModelDir, ResNet18.PreprocessRelativePath)).Graph;
        var import = OnnxResNetImporter.Import(g, prep, ResNetConfig.MlNetResNet18);
        try
        {
            Assert.Equal("ReLU347_Output_0", import.StageOutputs[2]);
            Assert.Equal("ReLU393_Output_0", import.StageOutputs[3]);
            Assert.Equal("Pooling395_Output_0", import.PooledOutput);
            // Every initializer is taken (110 = 22 convs + 22·4 BN tensors), plus the mean image;
            // 15 908 800 = the element count of all initializers (counted with the onnx Python package).
            Assert.Equal(111, import.Weights.Count);
            Assert.Equal(15_908_800L + 3 * 224 * 224, import.Weights.Values.Sum(t => t.numel()));
        }
        finally { foreach (var t in import.Weights.Values) t.Dispose(); }
    }

    [Fact]
    public void Importer_RejectsAConfigurationThatDiffersFromTheGraph()
    {
        var g = OnnxModelReader.Read(Path.Combine(ModelDir, ResNet18.ModelRelativePath)).Graph;
        var prep = OnnxModelReader.Read(Path.Combine(ModelDir, ResNet18.PreprocessRelativePath)).Graph;
        var torchvisionLayout = ResNetConfig.MlNetResNet18 with { Layers = new[] { 2, 2, 2, 2 } };
        var e1 = Assert.Throws<InvalidDataException>(() => OnnxResNetImporter.Import(g, prep, torchvisionLayout));
        Assert.Contains("[2,2,2,2]", e1.Message);
        var symmetric = ResNetConfig.MlNetResNet18 with { StemConvPads = new[] { 3, 3, 3, 3 } };
        var e2 = Assert.Throws<InvalidDataException>(() => OnnxResNetImporter.Import(g, prep, symmetric));
        Assert.Contains("pads [3,3,2,2]", e2.Message);
    }

    [Fact]
    public void Pooled_EqualsMlNetDnnFeaturizeImage_OnRealPhotos()
    {
        var (pixels, expected) = _fx.MlNet;
        using var scope = NewDisposeScope();
        var model = _fx.Model;
        using var _ = no_grad();
        var pooled = model.EncodePooled(model.Preprocess(PixelsToRgb01(pixels)));
        Assert.Equal(new long[] { Photos.Length, 512 }, pooled.shape);
        var want = stack(expected.Select(f => tensor(f)).ToArray());
        double maxAbs = (pooled - want).abs().max().item<float>();
        double scale = want.abs().max().item<float>();
        _out.WriteLine($"pooled 512-d vs ML.NET DnnFeaturizeImage (ONNX Runtime), {Photos.Length} photos: max abs error {maxAbs:E3} (max |value| {scale:F3})");
        Assert.True(maxAbs <= Tolerance, $"max abs error {maxAbs} > {Tolerance}");
        // Distinct photos give distinct features (the comparison is not trivially satisfied).
        Assert.True((want[0] - want[1]).abs().max().item<float>() > 0.1f);
    }

    /// <summary>
    /// ONNX Runtime runs ResNetPreprocess.onnx, then ResNet18.onnx with its two stage maps made graph outputs
    /// (appended <c>GraphProto.output</c> entries: protobuf merges a repeated message field given twice).
    /// </summary>
    [Fact]
    public void StageMaps_EqualOnnxRuntime_OnRealPhotos()
    {
        var (pixels, _) = _fx.MlNet;
        string[] names = { "ReLU347_Output_0", "ReLU393_Output_0", "Pooling395_Output_0" };
        using var prep = new InferenceSession(Path.Combine(ModelDir, ResNet18.PreprocessRelativePath));
        var modelBytes = File.ReadAllBytes(Path.Combine(ModelDir, ResNet18.ModelRelativePath));
        using var net = new InferenceSession(modelBytes.Concat(ExtraGraphOutputs(names[0], names[1])).ToArray());

        using var scope = NewDisposeScope();
        var model = _fx.Model;
        using var _ = no_grad();
        var ours = model.Features(model.Preprocess(PixelsToRgb01(pixels)));
        var oursByName = new[] { ours.Stage3, ours.Stage4, ours.Pooled.view(-1, 512, 1, 1) };
        Assert.Equal(new long[] { Photos.Length, 256, 14, 14 }, ours.Stage3.shape);
        Assert.Equal(new long[] { Photos.Length, 512, 7, 7 }, ours.Stage4.shape);

        var worst = new double[names.Length];
        for (int i = 0; i < pixels.Length; i++)
        {
            var input = new DenseTensor(pixels[i], new[] { 1, 3, 224, 224 });
            using var prepOut = prep.Run(new[] { NamedOnnxValue.CreateFromTensor("OriginalInput", input) });
            var pre = prepOut.Single().AsTensor<float>().ToArray();
            // Our preprocessing equals the ONNX one.
            var ourPre = model.Preprocess(PixelsToRgb01(new[] { pixels[i] }));
            Assert.True((ourPre - tensor(pre).view(1, 3, 224, 224)).abs().max().item<float>() <= 1e-4f);

            var netIn = new DenseTensor(pre, new[] { 1, 3, 224, 224 });
            using var outs = net.Run(new[] { NamedOnnxValue.CreateFromTensor("Input247", netIn) }, names);
            for (int k = 0; k < names.Length; k++)
            {
                var r = outs.Single(o => o.Name == names[k]).AsTensor<float>();
                var expected = tensor(r.ToArray()).view(r.Dimensions.ToArray().Select(d => (long)d).ToArray());
                Assert.Equal(oursByName[k][i].shape, expected[0].shape);
                worst[k] = Math.Max(worst[k], (oursByName[k][i] - expected[0]).abs().max().item<float>());
            }
        }
        for (int k = 0; k < names.Length; k++)
            _out.WriteLine($"{names[k]} vs ONNX Runtime, {Photos.Length} photos: max abs error {worst[k]:E3}");
        Assert.All(worst, w => Assert.True(w <= Tolerance, $"max abs error {w} > {Tolerance}"));
    }

    [Fact]
    public void OtherInputSizes_GiveGridsAtStride16And32()
    {
        using var scope = NewDisposeScope();
        var stage3 = _fx.Model;
        using var _ = no_grad();
        Assert.Equal(256, stage3.Channels);
        Assert.Equal(16, stage3.PatchSize);
        Assert.Equal(224, stage3.DefaultImageSize);
        var x = rand(2, 3, 256, 192, generator: new Generator(1));
        var pre = stage3.Preprocess(x);
        // The mean image resized to 256×192 keeps the per-channel level of the 224×224 one.
        var mean = stage3.MeanImageFor(256, 192);
        Assert.Equal(new long[] { 1, 3, 256, 192 }, mean.shape);
        var diff = (mean.mean(new long[] { 2, 3 }) - stage3.mean_image.mean(new long[] { 2, 3 })).abs().max().item<float>();
        Assert.True(diff < 0.5f, $"per-channel mean moved by {diff}");
        Assert.Equal(new long[] { 2, 256, 16, 12 }, stage3.EncodeGrid(pre).shape);
        using var stage4 = new ResNet18(ResNetConfig.MlNetResNet18, ResNetGridLayer.Stage4);
        Assert.Equal(512, stage4.Channels);
        Assert.Equal(32, stage4.PatchSize);
        Assert.Equal(new long[] { 2, 512, 8, 6 }, stage4.EncodeGrid(pre).shape);
        Assert.Equal(new long[] { 2, 512 }, stage4.EncodePooled(pre).shape);
    }

    [Fact]
    public void Module_BuiltInsideADisposeScope_KeepsItsWeightsAfterwards()
    {
        ResNet18 model;
        using (NewDisposeScope())
            model = new ResNet18(ResNetConfig.MlNetResNet18 with { Layers = new[] { 1, 1, 1, 1 }, Widths = new[] { 4, 4, 4, 4 } });
        using (model)
        using (NewDisposeScope())
        using (no_grad())
        {
            var y = model.EncodePooled(model.Preprocess(rand(1, 3, 32, 32)));
            Assert.Equal(new long[] { 1, 4 }, y.shape);
            Assert.Equal(model.state_dict().Count, model.state_dict().Values.Count(t => t.numel() > 0));
        }
    }

    /// <summary>
    /// At 224×224 CNTK's asymmetric pads give the same result as symmetric ones, so the ONNX comparison cannot see them;
    /// here they are checked against explicit zero padding (top 2, left 1, bottom 0, right 1) on an odd-sized input.
    /// </summary>
    [Fact]
    public void AsymmetricPads_FollowOnnxOrder_TopLeftBottomRight()
    {
        using var scope = NewDisposeScope();
        var conv = new PaddedConv2d(2, 3, 3, 2, new[] { 2, 1, 0, 1 });
        var x = randn(1, 2, 9, 7, generator: new Generator(8));
        var padded = zeros(1, 2, 9 + 2 + 0, 7 + 1 + 1);
        padded[.., .., TensorIndex.Slice(2, 11), TensorIndex.Slice(1, 8)] = x;
        var expected = nn.functional.conv2d(padded, conv.weight, strides: new long[] { 2, 2 });
        using var _ = no_grad();
        var actual = conv.forward(x);
        Assert.Equal(expected.shape, actual.shape);
        Assert.True((actual - expected).abs().max().item<float>() < 1e-6f);
        Assert.Equal(new[] { 2, 1, 0, 1 }, conv.Pads);
        // The stem conv at an odd size: CNTK's [3,3,2,2] yields one row/column fewer than symmetric padding 3.
        var stem = new PaddedConv2d(3, 4, 7, 2, new[] { 3, 3, 2, 2 });
        Assert.Equal(new long[] { 1, 4, 112, 112 }, stem.forward(randn(1, 3, 225, 225)).shape);
    }

    /// <summary>A serialized ModelProto fragment { graph { output { name, type.tensor_type.elem_type = FLOAT } ... } }.</summary>
    static byte[] ExtraGraphOutputs(params string[] names)
    {
        var graph = new List<byte>();
        foreach (var name in names)
        {
            var tensorType = Field(1, new byte[] { 0x08, 0x01 }); // TypeProto.tensor_type { elem_type: 1 }
            var valueInfo = Field(1, System.Text.Encoding.UTF8.GetBytes(name)).Concat(Field(2, tensorType)).ToArray();
            graph.AddRange(Field(12, valueInfo));
        }
        return Field(7, graph.ToArray());
    }

    static byte[] Field(int number, byte[] payload)
    {
        var b = new List<byte>();
        Varint(b, (ulong)(number << 3 | 2));
        Varint(b, (ulong)payload.Length);
        b.AddRange(payload);
        return b.ToArray();
    }

    static void Varint(List<byte> b, ulong v)
    {
        while (v >= 0x80) { b.Add((byte)(v | 0x80)); v >>= 7; }
        b.Add((byte)v);
    }
}
