using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Svg.ML.Checkpoints;
using Svg.ML.Dense;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.MLNet.Dense;

/// <summary>
/// A fitted dense head: adds the [H, W] prediction column (class indices as floats, or metres), and for segmentation
/// optionally per-class probabilities [K, H, W] and a colourised class-map image, computed in batches inside the
/// cursor. Saves with <see cref="SvgModel"/>; also usable directly on tensors through <see cref="Head"/>.
/// </summary>
public sealed class SvgDenseTransformer : SvgTransformerBase
{
    internal const string Kind = "SvgDense";
    readonly SvgDenseOptions _options;

    internal SvgDenseTransformer(MLContext ml, SvgDenseOptions options, DenseHead head, int height, int width) : base(ml, Kind)
    {
        _options = options.Clone();
        Head = head;
        Height = height;
        Width = width;
        Device = SvgHost.ResolveDevice(ml);
        Head.to(Device);
        Head.eval();
        BatchSize = options.BatchSize > 0 ? options.BatchSize : 64;
    }

    /// <summary>The trained head (evaluation mode).</summary>
    public DenseHead Head { get; }

    /// <summary>Output height H.</summary>
    public int Height { get; }

    /// <summary>Output width W.</summary>
    public int Width { get; }

    /// <summary>The device the head runs on.</summary>
    public Device Device { get; }

    /// <inheritdoc/>
    public override int BatchSize { get; }

    internal override string ArchiveKind => Kind;

    /// <summary>The RGB colour of class <paramref name="k"/> in the colourised image (a fixed, well-spread palette).</summary>
    public static (byte R, byte G, byte B) Palette(int k) =>
        ((byte)(k * 67 + 31), (byte)(k * 139 + 97), (byte)(k * 229 + 53));

    internal static IReadOnlyList<OutputColumn> OutputTypes(SvgDenseOptions o, int classes, int h, int w)
    {
        var list = new List<OutputColumn> { new(o.OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, h, w)) };
        if (o.ScoresColumnName is { } s) list.Add(new(s, new VectorDataViewType(NumberDataViewType.Single, classes, h, w)));
        if (o.ColorImageColumnName is { } c) list.Add(new(c, new ImageDataViewType(h, w)));
        return list;
    }

    internal static (int C, int H, int W) FeatureShape(SvgDenseOptions o, DataViewType type)
    {
        if (type is not VectorDataViewType { ItemType: var item } vt || item != NumberDataViewType.Single || !vt.IsKnownSize)
            throw SchemaErrors.WrongType("features", o.FeatureColumnName, "a float vector [C, h, w]", type);
        var d = vt.Dimensions;
        if (d.Length == 3) return (d[0], d[1], d[2]);
        int side = o.FeatureChannels > 0 ? (int)Math.Round(Math.Sqrt((double)vt.Size / o.FeatureChannels)) : 0;
        if (side == 0 || o.FeatureChannels * side * side != vt.Size)
            throw SchemaErrors.WrongType("features", o.FeatureColumnName, "a float vector with dimensions [C, h, w] (or a flat C·h·h vector with FeatureChannels set)", type);
        return (o.FeatureChannels, side, side);
    }

    private protected override IReadOnlyList<OutputColumn> GetOutputColumns(DataViewSchema inputSchema)
    {
        CheckFeatures(inputSchema);
        return OutputTypes(_options, Head.Config.NumClasses, Height, Width);
    }

    DataViewSchema.Column CheckFeatures(DataViewSchema schema)
    {
        var col = schema.GetColumnOrNull(_options.FeatureColumnName) ?? throw SchemaErrors.Missing("features", _options.FeatureColumnName);
        var (c, _, _) = FeatureShape(_options, col.Type);
        if (c != Head.Config.InChannels)
            throw SchemaErrors.WrongType("features", col.Name, $"{Head.Config.InChannels} channels (the head's)", col.Type);
        return col;
    }

    private protected override BatchKernel CreateKernel(DataViewSchema inputSchema)
    {
        var col = CheckFeatures(inputSchema);
        return new Kernel(this, col, FeatureShape(_options, col.Type));
    }

    /// <summary>Outputs of a batch of features [B, C, h, w]: (prediction [B, H, W], probabilities [B, K, H, W] or null).</summary>
    (Tensor Prediction, Tensor? Scores) Predict(Tensor features, bool scores)
    {
        using var _ = no_grad();
        var x = features.to(Device);
        if (Head.Config.Task == DenseTask.Depth) return (Head.PredictDepth(x, Height, Width), null);
        var logits = Head.Logits(x, Height, Width);
        return (logits.argmax(1), scores ? logits.softmax(1) : null);
    }

    private protected override void SaveContents(SvgArchive.Writer w)
    {
        var o = _options;
        w.Manifest["options"] = new JsonObject
        {
            ["featureColumnName"] = o.FeatureColumnName, ["targetColumnName"] = o.TargetColumnName,
            ["outputColumnName"] = o.OutputColumnName, ["scoresColumnName"] = o.ScoresColumnName,
            ["colorImageColumnName"] = o.ColorImageColumnName, ["featureChannels"] = o.FeatureChannels,
            ["batchSize"] = o.BatchSize, ["height"] = Height, ["width"] = Width,
        };
        w.Manifest["headConfig"] = SvgArchive.ToNode(Head.Config);
        w.AddTensors("head.", Head.state_dict());
    }

    /// <summary>Loads a transformer saved by <see cref="SvgTransformerBase.Save(string)"/>.</summary>
    public static SvgDenseTransformer Load(MLContext mlContext, string path)
    {
        using var f = File.OpenRead(path);
        return Load(mlContext, f);
    }

    /// <summary>Loads a transformer saved by <see cref="SvgTransformerBase.Save(Stream)"/>; device from the MLContext.</summary>
    public static SvgDenseTransformer Load(MLContext mlContext, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        using var r = SvgArchive.Reader.Open(stream, Kind);
        var m = r.Manifest["options"]!.AsObject();
        var config = SvgArchive.FromNode<DenseHeadConfig>(r.Manifest["headConfig"], "headConfig");
        var options = new SvgDenseOptions
        {
            FeatureColumnName = m["featureColumnName"]!.GetValue<string>(),
            TargetColumnName = m["targetColumnName"]!.GetValue<string>(),
            OutputColumnName = m["outputColumnName"]!.GetValue<string>(),
            ScoresColumnName = m["scoresColumnName"]?.GetValue<string>(),
            ColorImageColumnName = m["colorImageColumnName"]?.GetValue<string>(),
            FeatureChannels = m["featureChannels"]!.GetValue<int>(),
            BatchSize = m["batchSize"]!.GetValue<int>(),
        };
        var head = DenseHead.Create(config);
        try
        {
            StateDict.Load(head, r.WithPrefix("head."), strict: true, source: "saved SvgDense");
            return new SvgDenseTransformer(mlContext, options, head, m["height"]!.GetValue<int>(), m["width"]!.GetValue<int>());
        }
        catch
        {
            head.Dispose();
            throw;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) Head.Dispose();
    }

    sealed class Kernel(SvgDenseTransformer t, DataViewSchema.Column column, (int C, int H, int W) shape) : BatchKernel
    {
        ValueGetter<VBuffer<float>>? _getter;
        VBuffer<float> _value;
        readonly List<float[]> _staged = new();

        public override IReadOnlyList<DataViewSchema.Column> InputColumns { get; } = new[] { column };
        public override int StagedCount => _staged.Count;
        public override void Bind(DataViewRow row) => _getter = row.GetGetter<VBuffer<float>>(column);
        public override void Reset() => _staged.Clear();

        public override void Stage(long row)
        {
            try { _getter!(ref _value); }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new BadValueException(column.Name, $"{e.GetType().Name}: {e.Message}", e);
            }
            int n = shape.C * shape.H * shape.W;
            if (_value.Length != n) throw new BadValueException(column.Name, $"the vector has {_value.Length} values, expected {n}.");
            var dense = new float[n];
            _value.CopyTo(dense);
            _staged.Add(dense);
        }

        public override OutputBuffer?[] Run(bool[] active)
        {
            int b = _staged.Count, hw = t.Height * t.Width;
            var flat = new float[b * _staged[0].Length];
            for (int i = 0; i < b; i++) _staged[i].CopyTo(flat, i * _staged[0].Length);
            using var scope = NewDisposeScope();
            bool wantScores = t._options.ScoresColumnName is not null && active[1];
            var (pred, scores) = t.Predict(tensor(flat).reshape(b, shape.C, shape.H, shape.W), wantScores);
            var outputs = new List<OutputBuffer?> { new VectorBuffer(pred.to(ScalarType.Float32).cpu().data<float>().ToArray(), hw) };
            if (t._options.ScoresColumnName is not null)
                outputs.Add(scores is null ? null : new VectorBuffer(scores.cpu().data<float>().ToArray(), t.Head.Config.NumClasses * hw));
            if (t._options.ColorImageColumnName is not null)
                outputs.Add(active[outputs.Count] ? Colorize(pred, b, hw) : null);
            return outputs.ToArray();
        }

        ImageBuffer Colorize(Tensor pred, int b, int hw)
        {
            var classes = pred.to(ScalarType.Int64).cpu().data<long>().ToArray();
            var lut = Enumerable.Range(0, t.Head.Config.NumClasses).Select(Palette).ToArray();
            var rgba = new byte[b * hw * 4];
            for (int i = 0; i < classes.Length; i++)
            {
                var (r, g, bl) = lut[classes[i]];
                rgba[4 * i] = r; rgba[4 * i + 1] = g; rgba[4 * i + 2] = bl; rgba[4 * i + 3] = 255;
            }
            return new ImageBuffer(rgba, t.Width, t.Height);
        }
    }
}
