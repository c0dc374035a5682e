using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Svg.ML.Autoencoder;
using Svg.ML.Checkpoints;
using Svg.ML.Encoders;
using Svg.ML.MLNet;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.MLNet;

public sealed class PathRow
{
    public string ImagePath { get; set; } = "";
    public uint Label { get; set; }
}

public sealed class InMemoryImageRow
{
    [ImageType(TinyModels.ImageSize, TinyModels.ImageSize)]
    public MLImage? Image { get; set; }
}

public class SvgFeaturizerTests : IDisposable
{
    readonly string _dir = TestImages.TempFolder();
    readonly List<PathRow> _rows = new();

    public SvgFeaturizerTests()
    {
        // 32×32 colour images (the encoders' input size: no resizing, so the reference below is exact).
        for (int i = 0; i < 7; i++)
        {
            string p = Path.Combine(_dir, $"rgb{i}.png");
            TestImages.WriteRgbaPng(p, 32, 32, TestImages.Pattern(32, 32, i));
            _rows.Add(new PathRow { ImagePath = p, Label = (uint)(i % 3) });
        }
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static SvgFeaturizerEstimator.Options AllOutputs(SvgEncoder encoder, int batchSize) => new()
    {
        InputColumnName = "Image",
        FeatureMapColumnName = "Map",
        PooledColumnName = "Pooled",
        ClsTokenColumnName = "Cls",
        Encoder = encoder,
        BatchSize = batchSize,
    };

    static float[][] Column(IDataView view, string name)
    {
        var col = view.Schema[name];
        var result = new List<float[]>();
        using var cursor = view.GetRowCursor(new[] { col });
        var getter = cursor.GetGetter<VBuffer<float>>(col);
        VBuffer<float> v = default;
        while (cursor.MoveNext())
        {
            getter(ref v);
            result.Add(v.DenseValues().ToArray());
        }
        return result.ToArray();
    }

    /// <summary>RGB [1, 3, H, W] in [0, 1] from a PNG, by a per-pixel loop (independent of the library's batched path).</summary>
    static Tensor Rgb01(string path)
    {
        using var im = MLImage.CreateFromFile(path);
        var px = im.Pixels.ToArray();
        int w = im.Width, h = im.Height;
        var data = new float[3 * h * w];
        bool bgra = im.PixelFormat == MLPixelFormat.Bgra32;
        for (int i = 0; i < h * w; i++)
        {
            byte r = px[4 * i + (bgra ? 2 : 0)], g = px[4 * i + 1], b = px[4 * i + (bgra ? 0 : 2)];
            data[i] = r / 255f; data[h * w + i] = g / 255f; data[2 * h * w + i] = b / 255f;
        }
        return tensor(data).reshape(1, 3, h, w);
    }

    static void AssertClose(float[] expected, float[] actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = expected.Zip(actual, (a, b) => (double)Math.Abs(a - b)).Max();
        Assert.True(worst <= tol, $"{what}: max abs error {worst:E3} > {tol:E1}");
    }

    [Fact]
    public void Pipeline_FeatureMapPooledAndClsToken_MatchTheSvgEncoder()
    {
        var ml = new MLContext(seed: 1);
        using var encoder = TinyModels.CreateEncoder();
        var data = ml.Data.LoadFromEnumerable(_rows);
        var pipeline = ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath))
            .Append(ml.Transforms.SvgFeaturize(AllOutputs(encoder, batchSize: 3)));
        var model = pipeline.Fit(data);
        var output = model.Transform(data);

        // The shape is discoverable from the schema.
        var mapType = (VectorDataViewType)output.Schema["Map"].Type;
        Assert.Equal(new[] { TinyModels.Channels, 4, 4 }, mapType.Dimensions.ToArray());
        Assert.Equal(TinyModels.Channels, ((VectorDataViewType)output.Schema["Pooled"].Type).Size);
        Assert.Equal(32, ((VectorDataViewType)output.Schema["Cls"].Type).Size);

        var featurizer = (SvgFeaturizerTransformer)model.LastTransformer;
        Assert.Equal(ResidualAlignment.Stored, featurizer.Alignment);
        Assert.NotNull(featurizer.AlignmentStatistics);

        var maps = Column(output, "Map");
        var pooled = Column(output, "Pooled");
        var cls = Column(output, "Cls");
        Assert.Equal(_rows.Count, maps.Length);

        // Reference: the library's SvgEncoder.Encode with the stored statistics, image by image.
        using var reference = TinyModels.CreateEncoder(config: TinyModels.Encoder with { Alignment = ResidualAlignment.Stored });
        StateDict.Load(reference, encoder.state_dict());
        reference.Statistics = featurizer.AlignmentStatistics;
        reference.eval();
        using var _ = no_grad();
        for (int i = 0; i < _rows.Count; i++)
        {
            using var rgb = Rgb01(_rows[i].ImagePath);
            using var z = reference.Encode(rgb);
            AssertClose(z.data<float>().ToArray(), maps[i], 1e-5, $"map row {i}");
            using var zp = z.mean(new long[] { 2, 3 });
            AssertClose(zp.data<float>().ToArray(), pooled[i], 1e-5, $"pooled row {i}");
            using var f = ((Svg.ML.Encoders.DinoV3.DinoVisionTransformer)reference.BaseEncoder).ForwardFeatures(ImageNetNormalization.Normalize(rgb));
            AssertClose(f.XNormClsToken.data<float>().ToArray(), cls[i], 1e-5, $"cls row {i}");
        }
    }

    [Fact]
    public void Features_DoNotDependOnTheBatch_AndPredictionEngineAgrees()
    {
        var ml = new MLContext(seed: 1);
        using var encoder = TinyModels.CreateEncoder();
        var data = ml.Data.LoadFromEnumerable(_rows);
        float[][] Run(int batch)
        {
            var o = AllOutputs(encoder, batch);
            o.PooledColumnName = o.ClsTokenColumnName = null;
            var model = ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath)).Append(ml.Transforms.SvgFeaturize(o)).Fit(data);
            return Column(model.Transform(data), "Map");
        }
        var b1 = Run(1);
        var b4 = Run(4);
        var b16 = Run(16);
        for (int i = 0; i < b1.Length; i++)
        {
            AssertClose(b1[i], b4[i], 1e-5, $"row {i}, batch 4 vs 1");
            AssertClose(b1[i], b16[i], 1e-5, $"row {i}, batch 16 vs 1");
        }

        var o = AllOutputs(encoder, 4);
        var chain = ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath)).Append(ml.Transforms.SvgFeaturize(o)).Fit(data);
        var engine = ml.Model.CreatePredictionEngine<PathRow, MapPrediction>(chain);
        for (int i = 0; i < _rows.Count; i++)
        {
            var p = engine.Predict(_rows[i]);
            AssertClose(b1[i], p.Map, 1e-5, $"prediction engine row {i}");
            Assert.Equal(TinyModels.Channels, p.Pooled.Length);
        }
    }

    public sealed class MapPrediction
    {
        [VectorType(TinyModels.Channels * 16)] public float[] Map { get; set; } = Array.Empty<float>();
        public float[] Pooled { get; set; } = Array.Empty<float>();
    }

    [Fact]
    public void Fit_LearnsTheAlignmentAndPerChannelStatistics_OfAllRows()
    {
        var ml = new MLContext(seed: 1);
        using var encoder = TinyModels.CreateEncoder();
        var data = ml.Data.LoadFromEnumerable(_rows);
        var o = AllOutputs(encoder, batchSize: 3);
        o.PooledColumnName = o.ClsTokenColumnName = null;
        var model = ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath)).Append(ml.Transforms.SvgFeaturize(o)).Fit(data);
        var featurizer = (SvgFeaturizerTransformer)model.LastTransformer;

        // Alignment statistics = the library's estimate over the same images, whatever the batching.
        var batches = _rows.Select(r => Rgb01(r.ImagePath)).ToList();
        var expected = encoder.EstimateAlignment(batches);
        var actual = featurizer.AlignmentStatistics!;
        Assert.Equal(expected.BaseMean, actual.BaseMean, 1e-5);
        Assert.Equal(expected.BaseStd, actual.BaseStd, 1e-5);
        Assert.Equal(expected.ResidualMean, actual.ResidualMean, 1e-5);
        Assert.Equal(expected.ResidualStd, actual.ResidualStd, 1e-5);
        Assert.Equal(_rows.Count, actual.Rows);

        // Per-channel mean / unbiased std over every row and position of the output feature maps.
        var maps = Column(model.Transform(data), "Map");
        using var all = tensor(maps.SelectMany(m => m).ToArray()).reshape(maps.Length, TinyModels.Channels, 16).transpose(0, 1).reshape(TinyModels.Channels, -1).to(float64);
        using var mean = all.mean(new long[] { 1 });
        using var std = all.std(1, unbiased: true);
        var m = mean.data<double>().ToArray();
        var s = std.data<double>().ToArray();
        for (int c = 0; c < TinyModels.Channels; c++)
        {
            Assert.True(Math.Abs(m[c] - featurizer.ChannelMean[c]) <= 1e-5 * (1 + Math.Abs(m[c])), $"mean channel {c}: {m[c]} vs {featurizer.ChannelMean[c]}");
            Assert.True(Math.Abs(s[c] - featurizer.ChannelStd[c]) <= 1e-5 * (1 + s[c]), $"std channel {c}: {s[c]} vs {featurizer.ChannelStd[c]}");
        }
        foreach (var b in batches) b.Dispose();
    }

    [Fact]
    public void Images_AnyFormatSizeOrAlpha_AreConvertedLikeTheirRgbEquivalent()
    {
        var ml = new MLContext(seed: 1);
        using var encoder = TinyModels.CreateEncoder();
        var straight = TestImages.Pattern(32, 32, 42);
        var bgra = new byte[straight.Length];
        for (int i = 0; i < straight.Length; i += 4) { bgra[i] = straight[i + 2]; bgra[i + 1] = straight[i + 1]; bgra[i + 2] = straight[i]; bgra[i + 3] = 255; }
        var gray = new byte[32 * 32];
        new Random(5).NextBytes(gray);
        var grayRgba = gray.SelectMany(g => new byte[] { g, g, g, 255 }).ToArray();
        var half = (byte[])straight.Clone();            // same colours, alpha 128 (premultiplied inside MLImage)
        for (int i = 3; i < half.Length; i += 4) half[i] = 128;
        var halfPre = (byte[])half.Clone();
        for (int i = 0; i < halfPre.Length; i += 4) for (int c = 0; c < 3; c++) halfPre[i + c] = (byte)Math.Round(half[i + c] * 128 / 255.0);
        var constant = Enumerable.Range(0, 32 * 32).SelectMany(_ => new byte[] { 200, 40, 90, 255 }).ToArray();
        var constantLarge = Enumerable.Range(0, 70 * 45).SelectMany(_ => new byte[] { 200, 40, 90, 255 }).ToArray();

        string grayPng = Path.Combine(_dir, "gray.png");
        TestImages.WriteGrayPng(grayPng, 32, 32, gray);
        var rows = new[]
        {
            new InMemoryImageRow { Image = MLImage.CreateFromPixels(32, 32, MLPixelFormat.Rgba32, straight) },      // 0
            new InMemoryImageRow { Image = MLImage.CreateFromPixels(32, 32, MLPixelFormat.Bgra32, bgra) },          // 1: = 0
            new InMemoryImageRow { Image = MLImage.CreateFromFile(grayPng) },                                       // 2: 8-bit gray PNG
            new InMemoryImageRow { Image = MLImage.CreateFromPixels(32, 32, MLPixelFormat.Rgba32, grayRgba) },      // 3: = 2
            new InMemoryImageRow { Image = MLImage.CreateFromPixels(32, 32, MLPixelFormat.Rgba32, halfPre) },       // 4: alpha dropped ≈ 0
            new InMemoryImageRow { Image = MLImage.CreateFromPixels(32, 32, MLPixelFormat.Rgba32, constant) },      // 5
            new InMemoryImageRow { Image = MLImage.CreateFromPixels(45, 70, MLPixelFormat.Bgra32, constantLarge.Select((b, i) => (i % 4) switch { 0 => (byte)90, 2 => (byte)200, _ => b }).ToArray()) }, // 6: = 5 after resizing
        };
        Assert.Equal(MLPixelFormat.Bgra32, rows[2].Image!.PixelFormat);     // Skia widens 8-bit gray to BGRA
        var data = ml.Data.LoadFromEnumerable(rows);
        var o = AllOutputs(encoder, 4);
        o.PooledColumnName = o.ClsTokenColumnName = null;
        var featurizer = ml.Transforms.SvgFeaturize(o).Fit(data);
        var maps = Column(featurizer.Transform(data), "Map");

        AssertClose(maps[0], maps[1], 0, "BGRA vs RGBA");
        AssertClose(maps[2], maps[3], 0, "gray PNG vs RGB gray");
        AssertClose(maps[5], maps[6], 1e-5, "constant image resized vs native size");
        // Premultiplied alpha 128 loses < 1 level per channel when un-premultiplied: features nearly equal.
        Assert.True(maps[0].Zip(maps[4], (a, b) => Math.Abs(a - b)).Max() < 0.05, "alpha dropped");

        // Composite on white: a fully transparent image is a white image.
        var clear = new byte[32 * 32 * 4];
        var white = Enumerable.Repeat((byte)255, 32 * 32 * 4).ToArray();
        var rows2 = new[]
        {
            new InMemoryImageRow { Image = MLImage.CreateFromPixels(32, 32, MLPixelFormat.Rgba32, clear) },
            new InMemoryImageRow { Image = MLImage.CreateFromPixels(32, 32, MLPixelFormat.Rgba32, white) },
            new InMemoryImageRow { Image = MLImage.CreateFromPixels(32, 32, MLPixelFormat.Rgba32, straight) },
        };
        var o2 = AllOutputs(encoder, 4);
        o2.PooledColumnName = o2.ClsTokenColumnName = null;
        o2.Alpha = SvgAlphaMode.CompositeOnWhite;
        var data2 = ml.Data.LoadFromEnumerable(rows2);
        var maps2 = Column(ml.Transforms.SvgFeaturize(o2).Fit(data2).Transform(data2), "Map");
        AssertClose(maps2[1], maps2[0], 0, "transparent on white vs white");
    }

    [Fact]
    public void DirectApi_FeaturizeMatchesThePipeline()
    {
        var ml = new MLContext(seed: 1);
        using var encoder = TinyModels.CreateEncoder();
        var data = ml.Data.LoadFromEnumerable(_rows);
        var o = AllOutputs(encoder, 2);
        o.PooledColumnName = o.ClsTokenColumnName = null;
        var model = ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath)).Append(ml.Transforms.SvgFeaturize(o)).Fit(data);
        var featurizer = (SvgFeaturizerTransformer)model.LastTransformer;
        var maps = Column(model.Transform(data), "Map");
        var images = _rows.Select(r => MLImage.CreateFromFile(r.ImagePath)).ToList();
        using var direct = featurizer.Featurize(images);
        Assert.Equal(new long[] { _rows.Count, TinyModels.Channels, 4, 4 }, direct.shape);
        for (int i = 0; i < _rows.Count; i++)
        {
            using var row = direct[i];
            AssertClose(maps[i], row.data<float>().ToArray(), 1e-6, $"row {i}");
        }
        foreach (var im in images) im.Dispose();
    }

    [Fact]
    public void NonSquarePhoto_IsPreparedLikeTheTrainingDataPath()
    {
        // One resize implementation for the ML.NET featurizer and the dataset readers (ImageFolder, LabeledImages,
        // feature cache), so features at inference equal those training saw. coffee.png is 600×400, chelsea.png 451×300.
        var ml = new MLContext(seed: 1);
        using var encoder = TinyModels.CreateEncoder();
        string photo = Svg.ML.Tests.Data.TestData.SkimagePhoto("coffee.png");
        var data = ml.Data.LoadFromEnumerable(new[] { new PathRow { ImagePath = photo }, new PathRow { ImagePath = Svg.ML.Tests.Data.TestData.SkimagePhoto("chelsea.png") } });
        var o = AllOutputs(encoder, 1);
        o.PooledColumnName = o.ClsTokenColumnName = null;
        var model = ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath)).Append(ml.Transforms.SvgFeaturize(o)).Fit(data);
        var featurizer = (SvgFeaturizerTransformer)model.LastTransformer;
        var map = Column(model.Transform(data), "Map")[0];

        using var scope = NewDisposeScope();
        using var image = MLImage.CreateFromFile(photo);
        Assert.NotEqual(image.Width, image.Height);
        var rgb01 = Svg.ML.Data.ImageTensors.ToFloat01(Svg.ML.Data.ImageTensors.FromMLImage(image).unsqueeze(0), TinyModels.ImageSize);
        Assert.Equal(new long[] { 1, 3, TinyModels.ImageSize, TinyModels.ImageSize }, rgb01.shape);
        var expected = featurizer.FeaturizeTensor(rgb01);   // already square: the model on exactly these pixels
        AssertClose(expected.flatten().data<float>().ToArray(), map, 1e-5, "photo features");
    }
}
