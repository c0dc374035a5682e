using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Svg.ML.Diffusion.Editing;
using static TorchSharp.torch;

namespace Svg.ML.MLNet;

/// <summary>
/// Interpolates between two noises per row with a trained <see cref="SvgGenerator"/>: reads a class label and two
/// integer seeds; adds, per row, the <see cref="Options.Count"/> interpolants (λ evenly from 0 to 1, lerp or slerp)
/// sampled under that class, as ONE vector per row — features <c>[Count, C, h, w]</c> and/or decoded images
/// <c>[Count, 3, H, W]</c> in [0, 1] (a vector rather than Count rows: ML.NET transformers map rows to rows). The
/// first and last interpolants start from the noise <see cref="SvgGenerator.Generate"/> draws for the two seeds.
/// Sampling settings: the generator's <see cref="SvgGenerator.Sampler"/>. Saved with the generator inside (<see cref="SvgModel"/>).
/// </summary>
public sealed class SvgInterpolationTransformer : SvgGeneratorTransformer
{
    internal const string Kind = "SvgInterpolationTransformer";

    /// <summary>Columns and settings of an interpolation.</summary>
    public sealed class Options
    {
        /// <summary>The class: a key (MapValueToKey) or an integer class index.</summary>
        public string LabelColumnName = "Label";
        /// <summary>Integer seed of the noise at λ = 0.</summary>
        public string SeedAColumnName = "SeedA";
        /// <summary>Integer seed of the noise at λ = 1.</summary>
        public string SeedBColumnName = "SeedB";
        /// <summary>Interpolants per row (≥ 2, the two ends included).</summary>
        public int Count = 8;
        /// <summary>Lerp or slerp.</summary>
        public InterpolationMethod Method = InterpolationMethod.Slerp;
        /// <summary>Output: the features of the interpolants, [Count, C, h, w], or null.</summary>
        public string? OutputFeatureColumnName = "InterpolatedFeatures";
        /// <summary>Output: the decoded interpolants, float [Count, 3, H, W] in [0, 1] (needs a decoder), or null.</summary>
        public string? OutputImageColumnName = "InterpolatedImages";

        internal Options Clone() => (Options)MemberwiseClone();
    }

    readonly Options _o;

    internal SvgInterpolationTransformer(MLContext ml, SvgGenerator generator, Options options, bool ownsGenerator) : base(ml, Kind, generator, ownsGenerator)
    {
        _o = options.Clone();
        if (_o.Count < 2) throw new ArgumentOutOfRangeException(nameof(options), _o.Count, "Count must be at least 2 (the two ends).");
        if (!G.CanDecode) _o.OutputImageColumnName = null;
        if (_o.OutputFeatureColumnName is null && _o.OutputImageColumnName is null)
            throw new ArgumentException("Ask for at least one output column (OutputFeatureColumnName, OutputImageColumnName with a decoder).");
    }

    /// <summary>One row at a time: a row already samples <see cref="Options.Count"/> latents in batches.</summary>
    public override int BatchSize => 1;

    internal override string ArchiveKind => Kind;

    (DataViewSchema.Column Label, DataViewSchema.Column A, DataViewSchema.Column B) CheckInputs(DataViewSchema schema) =>
        (SvgGenerator.LabelColumn(schema, "label", _o.LabelColumnName, G.NumClasses),
         SvgGenerator.IntegerColumn(schema, "seed A", _o.SeedAColumnName),
         SvgGenerator.IntegerColumn(schema, "seed B", _o.SeedBColumnName));

    private protected override IReadOnlyList<OutputColumn> GetOutputColumns(DataViewSchema inputSchema)
    {
        CheckInputs(inputSchema);
        return OutputColumns(_o, G);
    }

    internal static IReadOnlyList<OutputColumn> OutputColumns(Options o, SvgGenerator g)
    {
        var list = new List<OutputColumn>();
        var s = g.FeatureShape;
        if (o.OutputFeatureColumnName is { } f) list.Add(new(f, new VectorDataViewType(NumberDataViewType.Single, o.Count, s[0], s[1], s[2])));
        if (o.OutputImageColumnName is { } im && g.CanDecode)
        {
            int up = g.DecoderUpsampleFactor;
            list.Add(new(im, new VectorDataViewType(NumberDataViewType.Single, o.Count, 3, s[1] * up, s[2] * up)));
        }
        return list;
    }

    private protected override BatchKernel CreateKernel(DataViewSchema inputSchema) => new Kernel(this, CheckInputs(inputSchema));

    sealed class Kernel : BatchKernel
    {
        readonly SvgInterpolationTransformer _t;
        readonly (DataViewSchema.Column Label, DataViewSchema.Column A, DataViewSchema.Column B) _in;
        Func<long>? _label, _a, _b;
        readonly List<(int Label, long A, long B)> _rows = new();

        public Kernel(SvgInterpolationTransformer t, (DataViewSchema.Column, DataViewSchema.Column, DataViewSchema.Column) inputs)
        {
            _t = t;
            _in = inputs;
            InputColumns = new[] { _in.Label, _in.A, _in.B };
        }

        public override IReadOnlyList<DataViewSchema.Column> InputColumns { get; }
        public override int StagedCount => _rows.Count;

        public override void Bind(DataViewRow row)
        {
            _label = SvgGenerator.IntegerReader(row, _in.Label);
            _a = SvgGenerator.IntegerReader(row, _in.A);
            _b = SvgGenerator.IntegerReader(row, _in.B);
        }

        public override void Stage(long row) =>
            _rows.Add((SvgGenerator.ReadClass(_label!, _in.Label, _t.G.NumClasses),
                       SvgGenerator.ReadInteger(_a!, _in.A), SvgGenerator.ReadInteger(_b!, _in.B)));

        public override void Reset() => _rows.Clear();

        public override OutputBuffer?[] Run(bool[] active)
        {
            var g = _t.G;
            var outputs = OutputColumns(_t._o, g);
            var result = new OutputBuffer?[active.Length];
            var parts = outputs.Select(_ => new List<float>()).ToArray();
            foreach (var (label, a, b) in _rows)
            {
                using var scope = NewDisposeScope();
                var latents = g.InterpolateLatents(label, a, b, _t._o.Count, _t._o.Method);
                for (int j = 0; j < active.Length; j++)
                {
                    if (!active[j]) continue;
                    var values = outputs[j].Name == _t._o.OutputFeatureColumnName ? latents : g.DecodeFeatures(latents);
                    using var c = values.to(ScalarType.Float32).cpu().contiguous();
                    parts[j].AddRange(MemoryMarshal.Cast<byte, float>(c.bytes).ToArray());
                }
            }
            for (int j = 0; j < active.Length; j++)
                if (active[j]) result[j] = new VectorBuffer(parts[j].ToArray(), parts[j].Count / _rows.Count);
            return result;
        }
    }

    // ---- persistence: the generator's archive plus the interpolation settings ----

    private protected override string Section => "interpolation";

    private protected override JsonObject SaveSettings() => new()
    {
        ["labelColumnName"] = _o.LabelColumnName,
        ["seedAColumnName"] = _o.SeedAColumnName,
        ["seedBColumnName"] = _o.SeedBColumnName,
        ["count"] = _o.Count,
        ["method"] = _o.Method.ToString(),
        ["outputFeatureColumnName"] = _o.OutputFeatureColumnName,
        ["outputImageColumnName"] = _o.OutputImageColumnName,
    };

    /// <summary>Loads an interpolation transformer saved by <see cref="SvgTransformerBase.Save(Stream)"/> (device from the MLContext).</summary>
    public static SvgInterpolationTransformer Load(MLContext mlContext, Stream stream)
    {
        return Load(mlContext, stream, Kind, "interpolation", (e, generator) =>
        {
            var options = new Options
            {
                LabelColumnName = e["labelColumnName"]!.GetValue<string>(),
                SeedAColumnName = e["seedAColumnName"]!.GetValue<string>(),
                SeedBColumnName = e["seedBColumnName"]!.GetValue<string>(),
                Count = e["count"]!.GetValue<int>(),
                Method = Enum.Parse<InterpolationMethod>(e["method"]!.GetValue<string>()),
                OutputFeatureColumnName = e["outputFeatureColumnName"]?.GetValue<string>(),
                OutputImageColumnName = e["outputImageColumnName"]?.GetValue<string>(),
            };
            return new SvgInterpolationTransformer(mlContext, generator, options, ownsGenerator: true);
        });
    }
}
