using Microsoft.ML;
using Microsoft.ML.Data;
using Svg.ML.Autoencoder;
using Svg.ML.Diffusion;
using Svg.ML.Diffusion.Editing;
using Svg.ML.MLNet;
using Svg.ML.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;
using Tiny = Svg.ML.Tests.Diffusion.TinyModels;

namespace Svg.ML.Tests.MLNet;

/// <summary>Editing and interpolation on SvgGenerator: the direct API, the ML.NET transformers, persistence.</summary>
public class SvgEditingTests : IDisposable
{
    const int C = 6, G = 4, Size = C * G * G;
    readonly MLContext _ml = new(seed: 1);
    readonly SvgGenerator _generator;
    readonly SvgDecoderTransformer _decoder;
    readonly Tensor _features;                                    // [5, C, G, G] inputs in the featurizer's space

    public class EditRow
    {
        [VectorType(Size)] public float[] Features = [];
        [VectorType(G * G)] public float[] Mask = [];
        public int Target;
        public int Source;
        public long Seed;
    }

    public class EditOut { [VectorType(Size)] public float[] EditedFeatures = []; }

    public class InterpolationRow { public int Label; public long SeedA; public long SeedB; }

    public class InterpolationOut { [VectorType(4 * Size)] public float[] InterpolatedFeatures = []; }

    public SvgEditingTests()
    {
        TorchRuntime.EnsureInitialized();
        using var g = new Generator(3);
        var tokens = torch.randn(new long[] { 32, G * G, C }, generator: g) * 2 + 0.5;
        var normalizer = FeatureNormalizer.Fit(tokens);
        _features = LatentTokens.ToLatent(torch.randn(new long[] { 5, G * G, C }, generator: g) * 2 + 0.5, G, G);
        var decoderModel = TorchRuntime_WithSeed(() => new LdmDecoder(new LdmDecoderConfig(Ch: 32, ChMult: [1, 1], NumResBlocks: 0, AttnResolutions: [], ZChannels: C, Resolution: 8)));
        var data = _ml.Data.LoadFromEnumerable(Rows());
        _decoder = _ml.Transforms.SvgDecode(new SvgDecoderEstimator.Options { InputColumnName = "Features", OutputColumnName = "Decoded", Decoder = decoderModel }).Fit(data);
        _generator = SvgGenerator.Create(_ml, Tiny.RandomDiT(), normalizer,
            new SvgGenerator.Options { BatchSize = 3, Sampler = new SamplerOptions(Steps: 6, CfgScale: 2.0) }, _decoder);
    }

    static LdmDecoder TorchRuntime_WithSeed(Func<LdmDecoder> make) => Svg.ML.Training.TrainingRandom.WithGlobalSeed(5, make);

    public void Dispose()
    {
        _generator.Dispose(); _decoder.Dispose(); _features.Dispose();
    }

    static readonly EditOptions Quick = new(Steps: 10, MaskBlur: 0, Fade: 0);

    List<EditRow> Rows()
    {
        using var box = MaskedEdit.BoxMask(G, G, 0, 0, 0.5, 0.5);
        float[] mask = box.data<float>().ToArray();
        return Enumerable.Range(0, 5).Select(i => new EditRow
        {
            Features = _features[i].flatten().data<float>().ToArray(), Mask = mask, Target = i % 3, Source = (i + 1) % 3, Seed = 40 + i,
        }).ToList();
    }

    static double Scale(Tensor t) => Math.Max(1, t.abs().max().item<float>());

    [Fact]
    public void Interpolation_ends_are_the_plain_samples_of_the_two_seeds()
    {
        using var plain = _generator.Generate(new[] { 1, 1 }, new long[] { 7, 9 });
        foreach (var method in new[] { InterpolationMethod.Lerp, InterpolationMethod.Slerp })
        {
            using var path = _generator.Interpolate(1, 7, 9, 5, method);
            Assert.Equal(new long[] { 5, C, G, G }, path.shape);
            // Same noise rows (exactly: Interpolation returns the ends bit for bit); sampled in other batch compositions
            // (5 rows in batches of 3 vs 2 rows), which may round differently: 1e-5 of the values' scale.
            Assert.True(Tiny.MaxDiff(path[0], plain[0]) <= 1e-5 * Scale(plain), method.ToString());
            Assert.True(Tiny.MaxDiff(path[4], plain[1]) <= 1e-5 * Scale(plain), method.ToString());
            Assert.True(Tiny.MaxDiff(path[2], plain[0]) > 1e-2);
        }
        using var images = _generator.InterpolateImageTensors(0, 7, 9, 3);
        Assert.Equal(new long[] { 3, 3, 8, 8 }, images.shape);
    }

    [Fact]
    public void Edit_keeps_the_outside_of_a_hard_box_and_changes_the_inside()
    {
        using var box = MaskedEdit.BoxMask(G, G, 0, 0, 0.5, 0.5);
        using var edited = _generator.Edit(_features, box, new[] { 0, 1, 2, 0, 1 }, Quick, seeds: new long[] { 1, 2, 3, 4, 5 });
        using var inside = (box > 0.5).expand(5, C, G, G);
        using var d = (edited - _features).abs();
        // Outside: the trajectory's end, the input normalised and de-normalised again (float rounding: 1e-5 of the scale).
        Assert.True(d.masked_select(~inside).max().item<float>() <= 1e-5 * Scale(_features));
        Assert.True(d.masked_select(inside).max().item<float>() > 0.1);
        using var images = _generator.EditImageTensors(_features[..2], box, new[] { 2, 2 }, Quick with { Mode = EditMode.KeepInside });
        Assert.Equal(new long[] { 2, 3, 8, 8 }, images.shape);
    }

    [Fact]
    public void Edit_transformer_matches_the_direct_api_and_survives_save_and_load()
    {
        var data = _ml.Data.LoadFromEnumerable(Rows());
        var options = new SvgEditTransformer.Options
        {
            MaskColumnName = "Mask", TargetLabelColumnName = "Target", SourceLabelColumnName = "Source", SeedColumnName = "Seed",
            Edit = Quick with { MaskBlur = 0.5, Fade = 0.3 }, BatchSize = 2,
        };
        using var editor = _ml.Transforms.SvgEdit(_generator, options).Fit(data);
        var output = editor.Transform(data);
        Assert.Equal(new Microsoft.ML.Transforms.Image.ImageDataViewType(8, 8), output.Schema["EditedImage"].Type);
        var rows = _ml.Data.CreateEnumerable<EditOut>(output, reuseRowObject: false).ToList();

        using var box = MaskedEdit.BoxMask(G, G, 0, 0, 0.5, 0.5);
        using var direct = _generator.Edit(_features, box, new[] { 0, 1, 2, 0, 1 }, options.Edit, new[] { 1, 2, 0, 1, 2 }, new long[] { 40, 41, 42, 43, 44 });
        double tol = 1e-5 * Scale(direct);       // batches of 2 (transformer) vs 3 (generator): rounding may differ
        for (int i = 0; i < 5; i++)
            Assert.True(direct[i].flatten().data<float>().ToArray().Zip(rows[i].EditedFeatures, (a, b) => Math.Abs(a - b)).Max() <= tol, $"row {i}");

        // The box option (no mask column) gives the same edits as the equal mask column.
        var boxOptions = new SvgEditTransformer.Options
        {
            Box = [0, 0, 0.5, 0.5], TargetLabelColumnName = "Target", SourceLabelColumnName = "Source", SeedColumnName = "Seed",
            Edit = options.Edit, OutputImageColumnName = null,
        };
        using var boxEditor = _ml.Transforms.SvgEdit(_generator, boxOptions).Fit(data);
        var boxRows = _ml.Data.CreateEnumerable<EditOut>(boxEditor.Transform(data), reuseRowObject: false).ToList();
        Assert.True(boxRows[3].EditedFeatures.Zip(rows[3].EditedFeatures, (a, b) => Math.Abs(a - b)).Max() <= tol);

        string path = Path.Combine(Path.GetTempPath(), $"svgml-edit-{Guid.NewGuid():N}.zip");
        try
        {
            SvgModel.Save(_ml, editor, data.Schema, path);
            using var loaded = (SvgEditTransformer)SvgModel.Load(_ml, path, out _);
            var again = _ml.Data.CreateEnumerable<EditOut>(loaded.Transform(data), reuseRowObject: false).ToList();
            for (int i = 0; i < 5; i++) Assert.Equal(rows[i].EditedFeatures, again[i].EditedFeatures);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Interpolation_transformer_matches_the_direct_api_and_survives_save_and_load()
    {
        var requests = new[] { new InterpolationRow { Label = 2, SeedA = 7, SeedB = 9 }, new InterpolationRow { Label = 0, SeedA = 1, SeedB = 2 } };
        var data = _ml.Data.LoadFromEnumerable(requests);
        using var t = _ml.Transforms.SvgInterpolate(_generator, new SvgInterpolationTransformer.Options { Count = 4, Method = InterpolationMethod.Lerp }).Fit(data);
        var output = t.Transform(data);
        Assert.Equal(new[] { 4, 3, 8, 8 }, ((VectorDataViewType)output.Schema["InterpolatedImages"].Type).Dimensions.ToArray());
        var rows = _ml.Data.CreateEnumerable<InterpolationOut>(output, reuseRowObject: false).ToList();
        using var direct = _generator.Interpolate(0, 1, 2, 4, InterpolationMethod.Lerp);
        Assert.Equal(direct.flatten().data<float>().ToArray(), rows[1].InterpolatedFeatures);

        string path = Path.Combine(Path.GetTempPath(), $"svgml-interp-{Guid.NewGuid():N}.zip");
        try
        {
            SvgModel.Save(_ml, t, data.Schema, path);
            using var loaded = (SvgInterpolationTransformer)SvgModel.Load(_ml, path, out _);
            var again = _ml.Data.CreateEnumerable<InterpolationOut>(loaded.Transform(data), reuseRowObject: false).ToList();
            Assert.Equal(rows[0].InterpolatedFeatures, again[0].InterpolatedFeatures);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Bad_columns_and_values_are_named()
    {
        var data = _ml.Data.LoadFromEnumerable(Rows());
        var e = Assert.Throws<ArgumentException>(() => _ml.Transforms.SvgEdit(_generator, new SvgEditTransformer.Options { TargetLabelColumnName = "Nope" }).Fit(data));
        Assert.Contains("Nope", e.Message);
        var wrong = Rows();
        wrong[2].Target = 7;                                         // the model has 3 classes
        using var editor = _ml.Transforms.SvgEdit(_generator, new SvgEditTransformer.Options { TargetLabelColumnName = "Target", Edit = Quick }).Fit(data);
        var bad = Assert.Throws<SvgDataException>(() => _ml.Data.CreateEnumerable<EditOut>(editor.Transform(_ml.Data.LoadFromEnumerable(wrong)), false).ToList());
        Assert.Equal("Target", bad.ColumnName);
        Assert.Equal(2, bad.Row);
    }
}
