using Microsoft.ML;
using Microsoft.ML.Data;
using Svg.ML.Checkpoints;
using Svg.ML.MLNet;
using Xunit;

namespace Svg.ML.Tests.MLNet;

public class SvgBadInputTests : IDisposable
{
    readonly string _dir = TestImages.TempFolder();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string Good(int i)
    {
        string p = Path.Combine(_dir, $"good{i}.png");
        TestImages.WriteRgbaPng(p, 32, 32, TestImages.Pattern(32, 32, i));
        return p;
    }

    /// <summary>Rows 0, 1 good; 2 zero-byte; 3 good; 4 corrupt; 5 missing file; 6 empty path; 7 good.</summary>
    List<PathRow> MixedRows()
    {
        string zero = Path.Combine(_dir, "zero.png");
        File.WriteAllBytes(zero, Array.Empty<byte>());
        string corrupt = Path.Combine(_dir, "corrupt.png");
        File.WriteAllBytes(corrupt, new byte[] { 137, 80, 78, 71, 1, 2, 3, 4, 5, 6, 7 });
        return new List<PathRow>
        {
            new() { ImagePath = Good(0), Label = 0 },
            new() { ImagePath = Good(1), Label = 1 },
            new() { ImagePath = zero, Label = 2 },
            new() { ImagePath = Good(3), Label = 3 },
            new() { ImagePath = corrupt, Label = 4 },
            new() { ImagePath = Path.Combine(_dir, "missing.png"), Label = 5 },
            new() { ImagePath = "", Label = 6 },
            new() { ImagePath = Good(7), Label = 7 },
        };
    }

    static SvgFeaturizerEstimator.Options Options(Svg.ML.Autoencoder.SvgEncoder encoder, bool skip = false) => new()
    {
        InputColumnName = "Image", FeatureMapColumnName = "Features", Encoder = encoder, BatchSize = 3, SkipBadRows = skip,
    };

    static void Drain(IDataView view, string column)
    {
        var col = view.Schema[column];
        using var cursor = view.GetRowCursor(new[] { col });
        var g = cursor.GetGetter<VBuffer<float>>(col);
        VBuffer<float> v = default;
        while (cursor.MoveNext()) g(ref v);
    }

    [Theory]
    [InlineData(2, "zero-byte or corrupt")]
    [InlineData(4, "zero-byte or corrupt")]
    [InlineData(5, "not found")]
    [InlineData(6, "no image")]
    public void BadImage_FailsNamingColumnAndRow(int badRow, string reason)
    {
        var ml = new MLContext(seed: 1);
        using var encoder = TinyModels.CreateEncoder();
        var all = MixedRows();
        var good = new[] { all[0], all[1], all[3] };
        var rows = good.Take(2).Append(all[badRow]).Append(all[7]).ToList();     // the bad image is row 2
        var images = ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath));

        // At Fit (the statistics pass reads the images) ...
        var data = ml.Data.LoadFromEnumerable(rows);
        var e1 = Assert.Throws<SvgDataException>(() => images.Append(ml.Transforms.SvgFeaturize(Options(encoder))).Fit(data));
        Assert.Equal("Image", e1.ColumnName);
        Assert.Equal(2, e1.Row);
        Assert.Contains("Column 'Image', row 2", e1.Message);
        Assert.Contains(reason, e1.Message);

        // ... and in Transform, once fitted on good data.
        var model = images.Append(ml.Transforms.SvgFeaturize(Options(encoder))).Fit(ml.Data.LoadFromEnumerable(good));
        var e2 = Assert.Throws<SvgDataException>(() => Drain(model.Transform(data), "Features"));
        Assert.Equal(2, e2.Row);
        Assert.Contains(reason, e2.Message);
    }

    [Fact]
    public void SkipBadRows_DropsThemKeepsTheOthersAlignedAndReportsThem()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        ml.RegisterSvg();
        using var encoder = TinyModels.CreateEncoder();
        var rows = MixedRows();
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath))
            .Append(ml.Transforms.SvgFeaturize(Options(encoder, skip: true))).Fit(data);
        var featurizer = (SvgFeaturizerTransformer)model.LastTransformer;
        var output = model.Transform(data);

        var labels = ml.Data.CreateEnumerable<LabelAndFeatures>(output, reuseRowObject: false).ToList();
        Assert.Equal(new uint[] { 0, 1, 3, 7 }, labels.Select(l => l.Label).ToArray());
        Assert.Equal(new long[] { 2, 4, 5, 6 }, featurizer.LastSkippedRows.Select(s => s.Row).ToArray());
        Assert.All(featurizer.LastSkippedRows, s => Assert.Equal("Image", s.ColumnName));
        Assert.Contains(messages, m => m.Contains("skipped 4 bad row(s) of 8"));

        // The kept rows' features equal those of a clean run.
        var clean = ml.Data.LoadFromEnumerable(new[] { rows[0], rows[1], rows[3], rows[7] });
        var expected = ml.Data.CreateEnumerable<LabelAndFeatures>(model.Transform(clean), reuseRowObject: false).ToList();
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i].Features, labels[i].Features);

        // A column the consumer does not ask for still sees the same rows (row sets must not depend on the columns read).
        Assert.Equal(4, ml.Data.CreateEnumerable<PathRow>(output, reuseRowObject: false).Count());
    }

    public sealed class LabelAndFeatures
    {
        public uint Label { get; set; }
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    [Fact]
    public void WrongColumnTypes_FailNamingTheColumn()
    {
        var ml = new MLContext(seed: 1);
        using var encoder = TinyModels.CreateEncoder();
        var data = ml.Data.LoadFromEnumerable(new[] { new PathRow { ImagePath = Good(0) }, new PathRow { ImagePath = Good(1) } });

        // Featurizer on a text column.
        var o = Options(encoder);
        o.InputColumnName = nameof(PathRow.ImagePath);
        var est = ml.Transforms.SvgFeaturize(o);
        var e1 = Assert.Throws<ArgumentException>(() => est.Fit(data));
        Assert.Contains("'ImagePath'", e1.Message);
        Assert.Contains("expected Image", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => est.GetOutputSchema(SchemaShapeOf(ml, data)));
        Assert.Contains("'ImagePath'", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => ml.Transforms.SvgFeaturize(Options(encoder)).Fit(data));
        Assert.Contains("no column 'Image'", e3.Message);

        // Decoder on a float vector of the wrong size (schema), and on variable-size vectors with a bad row.
        using var decoder = TinyModels.CreateDecoder();
        var dec = ml.Transforms.SvgDecode(new SvgDecoderEstimator.Options { InputColumnName = "Features", OutputColumnName = "Decoded", Decoder = decoder });
        var wrong = ml.Data.LoadFromEnumerable(new[] { new Fixed10 { Features = new float[10] } });
        var e4 = Assert.Throws<ArgumentException>(() => dec.Fit(wrong));
        Assert.Contains("'Features'", e4.Message);
        Assert.Contains("40·h·w", e4.Message);

        int ok = TinyModels.Channels * 16;
        var variable = ml.Data.LoadFromEnumerable(new[]
        {
            new VariableRow { Features = new float[ok] }, new VariableRow { Features = new float[ok] }, new VariableRow { Features = new float[ok - 1] },
        });
        var fitted = dec.Fit(variable);
        var e5 = Assert.Throws<SvgDataException>(() =>
        {
            var view = fitted.Transform(variable);
            using var c = view.GetRowCursor(view.Schema);
            var g = c.GetGetter<MLImage>(view.Schema["Decoded"]);
            MLImage im = null!;
            while (c.MoveNext()) g(ref im);
        });
        Assert.Equal("Features", e5.ColumnName);
        Assert.Equal(2, e5.Row);
    }

    public sealed class Fixed10 { [VectorType(10)] public float[] Features { get; set; } = Array.Empty<float>(); }
    public sealed class VariableRow { public float[] Features { get; set; } = Array.Empty<float>(); }

    public sealed class NoInput { }

    /// <summary>The SchemaShape of PathRow (text ImagePath, uint Label), made by a public estimator.</summary>
    static SchemaShape SchemaShapeOf(MLContext ml, IDataView _) =>
        ml.Transforms.CustomMapping<NoInput, PathRow>((_, _) => { }, null).GetOutputSchema(new SchemaShape(Array.Empty<SchemaShape.Column>()));

    [Fact]
    public void CheckpointThatDoesNotFitThePreset_FailsAtFitNamingTheFile()
    {
        var ml = new MLContext(seed: 1);
        using var dino = TinyModels.CreateDino();
        string dinoPath = Path.Combine(_dir, "dino.safetensors");
        SafeTensors.Save(dinoPath, dino.state_dict());
        var data = ml.Data.LoadFromEnumerable(new[] { new PathRow { ImagePath = Good(0) }, new PathRow { ImagePath = Good(1) } });
        var images = ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath));

        var o = new SvgFeaturizerEstimator.Options
        {
            DinoCheckpointPath = dinoPath, DinoConfig = TinyModels.Dino with { EmbedDim = 64, NumHeads = 4 }, ImageSize = 32,
        };
        var pipeline = images.Append(ml.Transforms.SvgFeaturize(o));
        var e = Assert.Throws<ArgumentException>(() => pipeline.Fit(data));
        Assert.Contains(dinoPath, e.Message);
        Assert.Contains("does not fit the requested DINOv3 tiny", e.Message);

        // Same width, one block more: the strict load lists the missing keys.
        o.DinoConfig = TinyModels.Dino with { Depth = 3 };
        var e2 = Assert.Throws<ArgumentException>(() => images.Append(ml.Transforms.SvgFeaturize(o)).Fit(data));
        Assert.Contains(dinoPath, e2.Message);
        Assert.Contains("missing key(s): blocks.2.", e2.Message);

        // The matching preset loads, and gives the features of the in-memory model.
        o.DinoConfig = TinyModels.Dino;
        var fromFile = images.Append(ml.Transforms.SvgFeaturize(o)).Fit(data);
        var inMemory = images.Append(ml.Transforms.SvgFeaturize(new SvgFeaturizerEstimator.Options { BaseEncoder = dino, ImageSize = 32 })).Fit(data);
        var a = ml.Data.CreateEnumerable<LabelAndFeatures>(fromFile.Transform(data), false).ToList();
        var b = ml.Data.CreateEnumerable<LabelAndFeatures>(inMemory.Transform(data), false).ToList();
        Assert.Equal(32 * 16, a[0].Features.Length);
        for (int i = 0; i < a.Count; i++) Assert.Equal(b[i].Features, a[i].Features);
    }

    [Fact]
    public void AutoencoderCheckpoint_GivesResidualChannelsAndDecoder_AndMismatchFailsAtFit()
    {
        var ml = new MLContext(seed: 1);
        using var encoder = TinyModels.CreateEncoder();
        using var decoder = TinyModels.CreateDecoder();
        // An SVG autoencoder checkpoint in the official layout: encoder.* (DINOv3), extra_vit.*, norm_vit.*, decoder.*.
        var all = encoder.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (var (k, v) in decoder.state_dict()) all["decoder." + k] = v;
        string aePath = Path.Combine(_dir, "svg_autoencoder.safetensors");
        SafeTensors.Save(aePath, all);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 4).Select(i => new PathRow { ImagePath = Good(i) }).ToList());
        var images = ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath));

        var fromFile = images.Append(ml.Transforms.SvgFeaturize(new SvgFeaturizerEstimator.Options
        {
            AutoencoderCheckpointPath = aePath, DinoConfig = TinyModels.Dino, EncoderConfig = TinyModels.Encoder,
        })).Fit(data);
        var inMemory = images.Append(ml.Transforms.SvgFeaturize(new SvgFeaturizerEstimator.Options { Encoder = encoder })).Fit(data);
        var a = ml.Data.CreateEnumerable<LabelAndFeatures>(fromFile.Transform(data), false).ToList();
        var b = ml.Data.CreateEnumerable<LabelAndFeatures>(inMemory.Transform(data), false).ToList();
        Assert.Equal(TinyModels.Channels * 16, a[0].Features.Length);
        for (int i = 0; i < a.Count; i++) Assert.Equal(b[i].Features, a[i].Features);

        // The decoder from the same file.
        var e = Assert.Throws<ArgumentException>(() => ml.Transforms.SvgDecode(new SvgDecoderEstimator.Options
        {
            InputColumnName = "Features", OutputColumnName = "Decoded", AutoencoderCheckpointPath = aePath, DecoderConfig = TinyModels.Decoder with { Ch = 64 },
        }).Fit(fromFile.Transform(data)));
        Assert.Contains(aePath, e.Message);
        Assert.Contains("does not fit the requested decoder", e.Message);
        Assert.Contains("shape mismatch", e.Message);
        // The release's decoder (392 channels) cannot read these 40-channel features: a schema error naming the column.
        var e3 = Assert.Throws<ArgumentException>(() => ml.Transforms.SvgDecode("Decoded", "Features", aePath).Fit(fromFile.Transform(data)));
        Assert.Contains("'Features'", e3.Message);
        Assert.Contains("392 channels", e3.Message);
        var ok = ml.Transforms.SvgDecode(new SvgDecoderEstimator.Options
        {
            InputColumnName = "Features", OutputColumnName = "Decoded", AutoencoderCheckpointPath = aePath, DecoderConfig = TinyModels.Decoder,
        }).Fit(fromFile.Transform(data));
        Assert.Equal(TinyModels.Channels, ok.DecoderConfig.ZChannels);
    }
}
