using Microsoft.ML;
using Microsoft.ML.Data;
using Svg.ML.MLNet;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.MLNet;

public class SvgPersistenceTests : IDisposable
{
    readonly string _dir = TestImages.TempFolder();
    readonly List<PathRow> _rows = new();

    public SvgPersistenceTests()
    {
        for (int i = 0; i < 6; i++)
        {
            string p = Path.Combine(_dir, $"img{i}.png");
            TestImages.WriteRgbaPng(p, 40 + 4 * i, 32, TestImages.Pattern(40 + 4 * i, 32, 10 + i));   // several sizes: resized inside
            _rows.Add(new PathRow { ImagePath = p, Label = (uint)(i % 2) });
        }
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public sealed class Output
    {
        public uint Label { get; set; }
        public uint LabelKey { get; set; }
        public float[] Map { get; set; } = Array.Empty<float>();
        public float[] PooledNorm { get; set; } = Array.Empty<float>();
        public uint PredictedLabel { get; set; }
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    static List<(Output Row, byte[] Pixels, int W, int H)> Read(MLContext ml, IDataView view)
    {
        var rows = ml.Data.CreateEnumerable<Output>(view, reuseRowObject: false).ToList();
        var col = view.Schema["Decoded"];
        var images = new List<(byte[], int, int)>();
        using (var c = view.GetRowCursor(new[] { col }))
        {
            var g = c.GetGetter<MLImage>(col);
            MLImage im = null!;
            while (c.MoveNext())
            {
                g(ref im);
                images.Add((im.Pixels.ToArray(), im.Width, im.Height));
            }
        }
        return rows.Zip(images, (r, i) => (r, i.Item1, i.Item2, i.Item3)).ToList();
    }

    /// <summary>ML.NET and Svg.ML transformers mixed in one fitted chain.</summary>
    ITransformer FitMixedChain(MLContext ml, IDataView data, Svg.ML.Autoencoder.SvgEncoder encoder, Svg.ML.Autoencoder.LdmDecoder decoder) =>
        ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath))
            .Append(ml.Transforms.SvgFeaturize(new SvgFeaturizerEstimator.Options
            {
                FeatureMapColumnName = "Map", PooledColumnName = "Pooled", ClsTokenColumnName = "Cls", Encoder = encoder, BatchSize = 4,
            }))
            .Append(ml.Transforms.Conversion.MapValueToKey("LabelKey", nameof(PathRow.Label)))
            .Append(ml.Transforms.NormalizeMeanVariance("PooledNorm", "Pooled"))
            .Append(ml.Transforms.SvgDecode(new SvgDecoderEstimator.Options { InputColumnName = "Map", OutputColumnName = "Decoded", Decoder = decoder, BatchSize = 4 }))
            .Append(ml.Transforms.Concatenate("Features", "PooledNorm", "Cls"))
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy("LabelKey", "Features"))
            .Fit(data);

    [Fact]
    public void MixedChain_SavesAndLoadsWithIdenticalOutputs()
    {
        var ml = new MLContext(seed: 1);
        using var encoder = TinyModels.CreateEncoder();
        using var decoder = TinyModels.CreateDecoder();
        var data = ml.Data.LoadFromEnumerable(_rows);
        var model = FitMixedChain(ml, data, encoder, decoder);
        var before = Read(ml, model.Transform(data));

        string path = Path.Combine(_dir, "model.zip");
        SvgModel.Save(ml, model, data.Schema, path);
        var ml2 = new MLContext(seed: 7);
        var loaded = SvgModel.Load(ml2, path, out var inputSchema);
        Assert.NotNull(inputSchema);
        Assert.Equal(TextDataViewType.Instance, inputSchema!["ImagePath"].Type);
        Assert.Equal(NumberDataViewType.UInt32, inputSchema["Label"].Type);
        var chain = Assert.IsAssignableFrom<IEnumerable<ITransformer>>(loaded);
        Assert.Equal(7, chain.Count());
        Assert.IsType<SvgFeaturizerTransformer>(chain.ElementAt(1));
        Assert.IsType<SvgDecoderTransformer>(chain.ElementAt(4));

        var after = Read(ml2, loaded.Transform(ml2.Data.LoadFromEnumerable(_rows)));
        Assert.Equal(before.Count, after.Count);
        for (int i = 0; i < before.Count; i++)
        {
            Assert.Equal(before[i].Row.Map, after[i].Row.Map);
            Assert.Equal(before[i].Row.PooledNorm, after[i].Row.PooledNorm);
            Assert.Equal(before[i].Row.LabelKey, after[i].Row.LabelKey);
            Assert.Equal(before[i].Row.PredictedLabel, after[i].Row.PredictedLabel);
            Assert.Equal(before[i].Row.Score, after[i].Row.Score);
            Assert.Equal((before[i].W, before[i].H), (after[i].W, after[i].H));
            Assert.Equal(before[i].Pixels, after[i].Pixels);
        }
        Assert.Equal(8, before[0].W);
        Assert.Equal(8, before[0].H);

        // The learned statistics travel with the featurizer.
        var f1 = (SvgFeaturizerTransformer)((IEnumerable<ITransformer>)model).ElementAt(1);
        var f2 = (SvgFeaturizerTransformer)chain.ElementAt(1);
        Assert.Equal(f1.ChannelMean, f2.ChannelMean);
        Assert.Equal(f1.ChannelStd, f2.ChannelStd);
        Assert.Equal(f1.AlignmentStatistics, f2.AlignmentStatistics);

        // The loaded chain also serves single rows.
        var engine = ml2.Model.CreatePredictionEngine<PathRow, Output>(loaded);
        for (int i = 0; i < _rows.Count; i++)
        {
            var p = engine.Predict(_rows[i]);
            Assert.Equal(before[i].Row.PredictedLabel, p.PredictedLabel);
            Assert.True(before[i].Row.Map.Zip(p.Map, (a, b) => Math.Abs(a - b)).Max() <= 1e-5);
        }
    }

    [Fact]
    public void MLNetModelSave_OnAChainWithSvgTransformers_NamesTheCallToUse()
    {
        var ml = new MLContext(seed: 1);
        using var encoder = TinyModels.CreateEncoder();
        using var decoder = TinyModels.CreateDecoder();
        var data = ml.Data.LoadFromEnumerable(_rows);
        var model = FitMixedChain(ml, data, encoder, decoder);
        var e = Assert.ThrowsAny<Exception>(() => ml.Model.Save(model, data.Schema, Path.Combine(_dir, "mlnet.zip")));
        var all = string.Join(" | ", Flatten(e).Select(x => x.Message));
        Assert.Contains("SvgModel.Save(mlContext, model, inputSchema, path)", all);
    }

    static IEnumerable<Exception> Flatten(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException) yield return x;
    }

    [Fact]
    public void SingleTransformers_SaveAndLoadAlone()
    {
        var ml = new MLContext(seed: 1);
        using var encoder = TinyModels.CreateEncoder();
        using var decoder = TinyModels.CreateDecoder();
        var data = ml.Data.LoadFromEnumerable(_rows);
        var images = ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath)).Fit(data).Transform(data);
        var featurizer = ml.Transforms.SvgFeaturize(new SvgFeaturizerEstimator.Options { FeatureMapColumnName = "Map", Encoder = encoder }).Fit(images);
        var features = featurizer.Transform(images);
        var dec = ml.Transforms.SvgDecode(new SvgDecoderEstimator.Options { InputColumnName = "Map", OutputColumnName = "Decoded", Decoder = decoder }).Fit(features);

        string fPath = Path.Combine(_dir, "featurizer.zip"), dPath = Path.Combine(_dir, "decoder.zip"), sPath = Path.Combine(_dir, "single.zip");
        featurizer.Save(fPath);
        dec.Save(dPath);
        SvgModel.Save(ml, featurizer, images.Schema, sPath);
        using var f2 = SvgFeaturizerTransformer.Load(ml, fPath);
        using var d2 = SvgDecoderTransformer.Load(ml, dPath);
        var s2 = SvgModel.Load(ml, sPath, out var schema);
        Assert.IsType<SvgFeaturizerTransformer>(s2);
        Assert.Equal(new Microsoft.ML.Transforms.Image.ImageDataViewType(), schema!["Image"].Type);

        float[][] Maps(ITransformer t) => ml.Data.CreateEnumerable<MapOnly>(t.Transform(images), false).Select(m => m.Map).ToArray();
        var expected = Maps(featurizer);
        Assert.Equal(expected, Maps(f2));
        Assert.Equal(expected, Maps(s2));

        using var z = tensor(expected.SelectMany(x => x).ToArray()).reshape(expected.Length, TinyModels.Channels, 4, 4);
        using var a = dec.Decode(z);
        using var b = d2.Decode(z);
        Assert.True((a - b).abs().max().item<float>() <= 1e-6f, $"decoded max abs diff {(a - b).abs().max().item<float>()}");
        Assert.Equal(new long[] { expected.Length, 3, 8, 8 }, a.shape);

        // A single-transformer file is not a chain file and vice versa: clear errors.
        var e = Assert.Throws<InvalidDataException>(() => SvgModel.Load(ml, fPath, out _));
        Assert.Contains("SvgFeaturizerTransformer.Load", e.Message);
        Assert.Throws<InvalidDataException>(() => SvgDecoderTransformer.Load(ml, fPath));
    }

    /// <summary>A featurizer over the ResNet18 base (the offline frozen encoder) with a residual encoder saves and loads too.</summary>
    [Fact]
    public void Featurizer_OverResNet18Base_SavesAndLoads()
    {
        var ml = new MLContext(seed: 1);
        var resnet = Svg.ML.Encoders.ResNet18.FromModelDirectory();
        var config = new Svg.ML.Autoencoder.SvgEncoderConfig
        {
            Residual = Svg.ML.Encoders.ResidualEncoderConfig.Released with { ImageSize = 64, NumLayers = 1, NumHeads = 2, HiddenDim = 32, MlpDim = 64 },
            Alignment = Svg.ML.Autoencoder.ResidualAlignment.Stored,
        };
        using var encoder = new Svg.ML.Autoencoder.SvgEncoder(resnet, config);
        var data = ml.Data.LoadFromEnumerable(_rows);
        var images = ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath)).Fit(data).Transform(data);
        var featurizer = ml.Transforms.SvgFeaturize(new SvgFeaturizerEstimator.Options
        {
            FeatureMapColumnName = "Map", Encoder = encoder, Alignment = Svg.ML.Autoencoder.ResidualAlignment.Stored,
        }).Fit(images);
        string path = Path.Combine(_dir, "resnet-featurizer.zip");
        featurizer.Save(path);
        using var loaded = SvgFeaturizerTransformer.Load(ml, path);

        float[][] Maps(ITransformer t) => ml.Data.CreateEnumerable<MapOnly>(t.Transform(images), false).Select(m => m.Map).ToArray();
        var expected = Maps(featurizer);
        Assert.Equal((256 + 8) * 4 * 4, expected[0].Length);
        Assert.Equal(expected, Maps(loaded));
    }

    public sealed class MapOnly { public float[] Map { get; set; } = Array.Empty<float>(); }

    [Fact]
    public void Decoder_BatchedPipeline_EqualsDirectDecode()
    {
        var ml = new MLContext(seed: 1);
        using var decoder = TinyModels.CreateDecoder();
        manual_seed(11);
        using var z = randn(5, TinyModels.Channels, 4, 4);
        var rows = Enumerable.Range(0, 5).Select(i => new FeatureRow { Features = z[i].data<float>().ToArray() }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var dec = ml.Transforms.SvgDecode(new SvgDecoderEstimator.Options { Decoder = decoder, BatchSize = 2 }).Fit(data);
        var view = dec.Transform(data);
        Assert.Equal(new Microsoft.ML.Transforms.Image.ImageDataViewType(8, 8), view.Schema["Image"].Type);
        var images = dec.DecodeToImages(z);
        var col = view.Schema["Image"];
        using var c = view.GetRowCursor(new[] { col });
        var g = c.GetGetter<MLImage>(col);
        MLImage im = null!;
        int i = 0;
        while (c.MoveNext())
        {
            g(ref im);
            Assert.Equal(MLPixelFormat.Rgba32, im.PixelFormat);
            Assert.Equal(images[i].Pixels.ToArray(), im.Pixels.ToArray());
            i++;
        }
        Assert.Equal(5, i);

        // Pixels = round(255 · (clamp(decoder(z), -1, 1) + 1) / 2), alpha 255.
        using var _ = no_grad();
        using var raw = decoder.forward(z);
        using var expected = ((raw.clamp(-1, 1) + 1) / 2 * 255).round().to(ScalarType.Byte);
        var px = images[3].Pixels.ToArray();
        var e = expected[3].data<byte>().ToArray();   // [3, 8, 8]
        for (int p = 0; p < 64; p++)
        {
            Assert.Equal(e[p], px[4 * p]);
            Assert.Equal(e[64 + p], px[4 * p + 1]);
            Assert.Equal(e[128 + p], px[4 * p + 2]);
            Assert.Equal(255, px[4 * p + 3]);
        }
    }

    public sealed class FeatureRow
    {
        [VectorType(TinyModels.Channels, 4, 4)] public float[] Features { get; set; } = Array.Empty<float>();
    }
}
