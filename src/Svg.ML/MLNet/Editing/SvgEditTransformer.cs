using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Svg.ML.Diffusion.Editing;
using static TorchSharp.torch;

namespace Svg.ML.MLNet;

/// <summary>
/// Edits rows of SVG features with a trained <see cref="SvgGenerator"/> (SDEdit with trajectory inversion,
/// <see cref="MaskedEdit"/>): reads a feature column (C×h×w, the featurizer's feature map — chain it after
/// <c>SvgFeaturize</c> on the image column), a region (a mask column or one box for all rows), a target class and
/// optionally the source class and a seed; adds the edited features and/or the decoded edited image. Rows are edited in
/// batches; row i's noise comes from its seed (the seed column, else <see cref="Options.Seed"/> + the row's position).
/// Saved with the generator inside (<see cref="SvgModel"/>).
/// </summary>
public sealed class SvgEditTransformer : SvgGeneratorTransformer
{
    internal const string Kind = "SvgEditTransformer";

    /// <summary>Columns and settings of an edit.</summary>
    public sealed class Options
    {
        /// <summary>Input features: a float vector of size C·h·w (the generator's feature shape).</summary>
        public string FeatureColumnName = "Features";
        /// <summary>Optional mask column (1 = the region): a float vector of size h·w (the latent grid) or with two
        /// dimensions [H, W] (a pixel mask, averaged onto the grid). Null: <see cref="Box"/> for every row.</summary>
        public string? MaskColumnName;
        /// <summary>The region as a box in fractions of the image: x0, y0, x1, y1 (y downwards), when there is no mask column.</summary>
        public double[]? Box = [0.25, 0.25, 0.75, 0.75];
        /// <summary>The new class: a key (MapValueToKey) or an integer class index.</summary>
        public string TargetLabelColumnName = "TargetLabel";
        /// <summary>Optional class of the input, for the inversion (else unconditional).</summary>
        public string? SourceLabelColumnName;
        /// <summary>Optional integer seed column.</summary>
        public string? SeedColumnName;
        /// <summary>Seed of rows without a seed column: row i uses Seed + i.</summary>
        public long Seed;
        /// <summary>Output column of the edited features (C×h×w), or null.</summary>
        public string? OutputFeatureColumnName = "EditedFeatures";
        /// <summary>Output column of the decoded edited image (needs the generator's decoder), or null.</summary>
        public string? OutputImageColumnName = "EditedImage";
        /// <summary>Steps, guidance, time shift, edit time, blur, fade, mode (defaults: the paper's 100 steps, CFG 4, shift 0.4).</summary>
        public EditOptions Edit = new();
        /// <summary>Rows edited together; 0 = the generator's batch size.</summary>
        public int BatchSize;

        internal Options Clone() => (Options)MemberwiseClone();
    }

    readonly Options _o;

    internal SvgEditTransformer(MLContext ml, SvgGenerator generator, Options options, bool ownsGenerator) : base(ml, Kind, generator, ownsGenerator)
    {
        _o = options.Clone();
        _o.Edit.Validate();
        if (_o.MaskColumnName is null && _o.Box is not { Length: 4 })
            throw new ArgumentException("Give a mask column or a box (x0, y0, x1, y1 in fractions of the image).");
        if (!G.CanDecode) _o.OutputImageColumnName = null;
        if (_o.OutputFeatureColumnName is null && _o.OutputImageColumnName is null)
            throw new ArgumentException("Ask for at least one output column (OutputFeatureColumnName, OutputImageColumnName with a decoder).");
        BatchSize = _o.BatchSize > 0 ? _o.BatchSize : G.BatchSize;
    }

    /// <inheritdoc/>
    public override int BatchSize { get; }

    internal override string ArchiveKind => Kind;

    int GridH => G.FeatureShape[1];
    int GridW => G.FeatureShape[2];

    sealed record Inputs(DataViewSchema.Column Features, DataViewSchema.Column? Mask, (int H, int W) MaskShape,
                         DataViewSchema.Column Target, DataViewSchema.Column? Source, DataViewSchema.Column? Seed);

    Inputs CheckInputs(DataViewSchema schema)
    {
        int size = G.FeatureShape.Aggregate(1, (a, b) => a * b);
        var f = schema.GetColumnOrNull(_o.FeatureColumnName) ?? throw SchemaErrors.Missing("features", _o.FeatureColumnName);
        if (f.Type is not VectorDataViewType { ItemType: var fi } fv || fi != NumberDataViewType.Single || fv.Size != size)
            throw SchemaErrors.WrongType("features", f.Name, $"a float vector of size {size} ({string.Join("×", G.FeatureShape)})", f.Type);
        DataViewSchema.Column? mask = null;
        var maskShape = (GridH, GridW);
        if (_o.MaskColumnName is { } mn)
        {
            mask = schema.GetColumnOrNull(mn) ?? throw SchemaErrors.Missing("mask", mn);
            if (mask.Value.Type is not VectorDataViewType { ItemType: var mi } mv || mi != NumberDataViewType.Single ||
                !(mv.Size == GridH * GridW || mv.Dimensions.Length == 2 && mv.Size > 0))
                throw SchemaErrors.WrongType("mask", mn, $"a float vector of size {GridH * GridW} (the latent grid) or with dimensions [H, W]", mask.Value.Type);
            if (mv.Dimensions.Length == 2) maskShape = (mv.Dimensions[0], mv.Dimensions[1]);
        }
        var target = SvgGenerator.LabelColumn(schema, "target label", _o.TargetLabelColumnName, G.NumClasses);
        var source = _o.SourceLabelColumnName is { } sn ? SvgGenerator.LabelColumn(schema, "source label", sn, G.NumClasses) : (DataViewSchema.Column?)null;
        var seed = _o.SeedColumnName is { } s ? SvgGenerator.IntegerColumn(schema, "seed", s) : (DataViewSchema.Column?)null;
        return new Inputs(f, mask, maskShape, target, source, seed);
    }

    private protected override IReadOnlyList<OutputColumn> GetOutputColumns(DataViewSchema inputSchema)
    {
        CheckInputs(inputSchema);
        return OutputColumns(_o, G);
    }

    internal static IReadOnlyList<OutputColumn> OutputColumns(Options o, SvgGenerator g)
    {
        var list = new List<OutputColumn>();
        var shape = g.FeatureShape;
        if (o.OutputFeatureColumnName is { } f) list.Add(new(f, new VectorDataViewType(NumberDataViewType.Single, shape[0], shape[1], shape[2])));
        if (o.OutputImageColumnName is { } im && g.CanDecode)
        {
            int up = g.DecoderUpsampleFactor;
            list.Add(new(im, new ImageDataViewType(shape[1] * up, shape[2] * up)));
        }
        return list;
    }

    private protected override BatchKernel CreateKernel(DataViewSchema inputSchema) => new Kernel(this, CheckInputs(inputSchema));

    sealed class Kernel : BatchKernel
    {
        readonly SvgEditTransformer _t;
        readonly Inputs _in;
        ValueGetter<VBuffer<float>>? _features, _mask;
        Func<long>? _target, _source, _seed;
        VBuffer<float> _fv, _mv;
        readonly List<float[]> _featureRows = new(), _maskRows = new();
        readonly List<int> _targets = new(), _sources = new();
        readonly List<long> _seeds = new();

        public Kernel(SvgEditTransformer t, Inputs inputs)
        {
            _t = t;
            _in = inputs;
            InputColumns = new[] { inputs.Features, inputs.Mask, inputs.Target, inputs.Source, inputs.Seed }
                .Where(c => c is not null).Select(c => c!.Value).ToArray();
        }

        public override IReadOnlyList<DataViewSchema.Column> InputColumns { get; }
        public override int StagedCount => _targets.Count;

        public override void Bind(DataViewRow row)
        {
            _features = row.GetGetter<VBuffer<float>>(_in.Features);
            if (_in.Mask is { } m) _mask = row.GetGetter<VBuffer<float>>(m);
            _target = SvgGenerator.IntegerReader(row, _in.Target);
            if (_in.Source is { } s) _source = SvgGenerator.IntegerReader(row, s);
            if (_in.Seed is { } sd) _seed = SvgGenerator.IntegerReader(row, sd);
        }

        static float[] Dense(ValueGetter<VBuffer<float>> getter, ref VBuffer<float> value, DataViewSchema.Column column)
        {
            try { getter(ref value); }
            catch (Exception e) when (e is not OperationCanceledException) { throw new BadValueException(column.Name, $"{e.GetType().Name}: {e.Message}", e); }
            var dense = new float[value.Length];
            value.CopyTo(dense);
            if (dense.Any(v => !float.IsFinite(v))) throw new BadValueException(column.Name, "the vector holds NaN or infinite values.");
            return dense;
        }

        public override void Stage(long row)
        {
            int cls = SvgGenerator.ReadClass(_target!, _in.Target, _t.G.NumClasses);
            int src = _source is null ? -1 : SvgGenerator.ReadClass(_source, _in.Source!.Value, _t.G.NumClasses);
            long seed = _seed is null ? _t._o.Seed + row : SvgGenerator.ReadInteger(_seed, _in.Seed!.Value);
            var features = Dense(_features!, ref _fv, _in.Features);
            var mask = _mask is null ? null : Dense(_mask, ref _mv, _in.Mask!.Value);
            _featureRows.Add(features);
            if (mask is not null) _maskRows.Add(mask);
            _targets.Add(cls);
            _sources.Add(src);
            _seeds.Add(seed);
        }

        public override void Reset()
        {
            _featureRows.Clear(); _maskRows.Clear(); _targets.Clear(); _sources.Clear(); _seeds.Clear();
        }

        public override OutputBuffer?[] Run(bool[] active)
        {
            var g = _t.G;
            int n = _targets.Count, h = _t.GridH, w = _t.GridW;
            using var scope = NewDisposeScope();
            var features = tensor(_featureRows.SelectMany(r => r).ToArray()).reshape(n, g.FeatureShape[0], h, w).to(g.Device);
            Tensor region;
            if (_maskRows.Count == 0)
            {
                var box = _t._o.Box!;
                region = MaskedEdit.BoxMask(h, w, box[0], box[1], box[2], box[3], g.Device).expand(n, h, w);
            }
            else
            {
                var (mh, mw) = _in.MaskShape;
                region = tensor(_maskRows.SelectMany(r => r).ToArray()).reshape(n, mh, mw).to(g.Device);
                if ((mh, mw) != (h, w)) region = MaskedEdit.GridMask(region, h, w);
            }
            int[]? sources = _source is null ? null : _sources.ToArray();
            var latents = g.EditLatents(features, region, _targets.ToArray(), sources, _seeds.ToArray(), _t._o.Edit);
            var outputs = OutputColumns(_t._o, g);
            var result = new OutputBuffer?[active.Length];
            for (int j = 0; j < active.Length; j++)
            {
                if (!active[j]) continue;
                if (outputs[j].Name == _t._o.OutputFeatureColumnName)
                {
                    using var c = latents.cpu().contiguous();
                    var data = new float[c.numel()];
                    MemoryMarshal.Cast<byte, float>(c.bytes).CopyTo(data);
                    result[j] = new VectorBuffer(data, (int)(c.numel() / n));
                }
                else
                {
                    var rgb = g.DecodeFeatures(latents);
                    result[j] = new ImageBuffer(MLImageTensors.ToRgbaBytes(rgb), (int)rgb.shape[3], (int)rgb.shape[2]);
                }
            }
            return result;
        }
    }

    // ---- persistence: the generator's archive plus the edit settings ----

    private protected override string Section => "edit";

    private protected override JsonObject SaveSettings() => new()
    {
        ["featureColumnName"] = _o.FeatureColumnName,
        ["maskColumnName"] = _o.MaskColumnName,
        ["box"] = _o.Box is null ? null : new JsonArray(_o.Box.Select(v => (JsonNode)v).ToArray()),
        ["targetLabelColumnName"] = _o.TargetLabelColumnName,
        ["sourceLabelColumnName"] = _o.SourceLabelColumnName,
        ["seedColumnName"] = _o.SeedColumnName,
        ["seed"] = _o.Seed,
        ["outputFeatureColumnName"] = _o.OutputFeatureColumnName,
        ["outputImageColumnName"] = _o.OutputImageColumnName,
        ["batchSize"] = _o.BatchSize,
        ["options"] = SvgArchive.ToNode(_o.Edit),
    };

    /// <summary>Loads an edit transformer saved by <see cref="SvgTransformerBase.Save(Stream)"/> (device from the MLContext).</summary>
    public static SvgEditTransformer Load(MLContext mlContext, Stream stream)
    {
        return Load(mlContext, stream, Kind, "edit", (e, generator) =>
        {
            var options = new Options
            {
                FeatureColumnName = e["featureColumnName"]!.GetValue<string>(),
                MaskColumnName = e["maskColumnName"]?.GetValue<string>(),
                Box = e["box"]?.AsArray().Select(v => v!.GetValue<double>()).ToArray(),
                TargetLabelColumnName = e["targetLabelColumnName"]!.GetValue<string>(),
                SourceLabelColumnName = e["sourceLabelColumnName"]?.GetValue<string>(),
                SeedColumnName = e["seedColumnName"]?.GetValue<string>(),
                Seed = e["seed"]!.GetValue<long>(),
                OutputFeatureColumnName = e["outputFeatureColumnName"]?.GetValue<string>(),
                OutputImageColumnName = e["outputImageColumnName"]?.GetValue<string>(),
                BatchSize = e["batchSize"]!.GetValue<int>(),
                Edit = SvgArchive.FromNode<EditOptions>(e["options"], "edit.options"),
            };
            return new SvgEditTransformer(mlContext, generator, options, ownsGenerator: true);
        });
    }
}
