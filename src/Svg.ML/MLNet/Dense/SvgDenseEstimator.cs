using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Svg.ML.Dense;
using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.MLNet.Dense;

/// <summary>Settings of <see cref="SvgSegmentationEstimator"/> and <see cref="SvgDepthEstimator"/>.</summary>
public sealed class SvgDenseOptions
{
    /// <summary>The feature-map column: a float vector with dimensions [C, h, w] (the <c>SvgFeaturize</c> output), or a
    /// flat C·h·h vector with <see cref="FeatureChannels"/> set.</summary>
    public string FeatureColumnName = "Features";

    /// <summary>The target column: a vector [H, W] (or flat H·W with <see cref="Height"/>/<see cref="Width"/>).
    /// Segmentation: class indices as Single, Int32, Byte or UInt32, or a key type (key k → class k − 1, missing → ignored);
    /// depth: Single metres (0/NaN invalid).</summary>
    public string TargetColumnName = "Label";

    /// <summary>The [H, W] prediction column to add: class indices as floats (segmentation) or metres (depth).</summary>
    public string OutputColumnName = "Prediction";

    /// <summary>Optional [K, H, W] column of per-class probabilities (segmentation only).</summary>
    public string? ScoresColumnName;

    /// <summary>Optional colourised class-map image column (segmentation only; colours of <see cref="SvgDenseTransformer.Palette"/>).</summary>
    public string? ColorImageColumnName;

    /// <summary>Output size; 0 takes it from the target column's dimensions.</summary>
    public int Height, Width;

    /// <summary>Channels C of a flat feature vector (0: the column must carry [C, h, w] dimensions).</summary>
    public int FeatureChannels;

    /// <summary>Training settings (task and classes are set by the estimator; the defaults of
    /// <see cref="DenseHeadTrainingOptions"/> otherwise; set Steps or Epochs).</summary>
    public DenseHeadTrainingOptions Training = new() { Epochs = 10 };

    /// <summary>Rows per forward pass at inference; 0 = 64.</summary>
    public int BatchSize;

    internal SvgDenseOptions Clone() => (SvgDenseOptions)MemberwiseClone();
}

/// <summary>Trains a segmentation head on a feature-map column and a class-mask column (see <see cref="SvgDenseOptions"/>).</summary>
public sealed class SvgSegmentationEstimator(MLContext mlContext, SvgDenseOptions options)
    : SvgDenseEstimator(new ContextRef(mlContext), options, DenseTask.Segmentation)
{
    internal SvgSegmentationEstimator(ContextRef context, SvgDenseOptions options) : this(context.Resolve(), options) { }
}

/// <summary>Trains a depth head on a feature-map column and a depth column in metres (see <see cref="SvgDenseOptions"/>).</summary>
public sealed class SvgDepthEstimator(MLContext mlContext, SvgDenseOptions options)
    : SvgDenseEstimator(new ContextRef(mlContext), options, DenseTask.Depth)
{
    internal SvgDepthEstimator(ContextRef context, SvgDenseOptions options) : this(context.Resolve(), options) { }
}

/// <summary>
/// The shared estimator: <see cref="Fit"/> reads every row (features and targets) into memory, trains the head with
/// <see cref="DenseHeadTraining"/> (progress, cancellation and checkpoints from <see cref="SvgDenseOptions.Training"/>)
/// and returns the <see cref="SvgDenseTransformer"/>.
/// </summary>
public abstract class SvgDenseEstimator : IEstimator<SvgDenseTransformer>
{
    readonly ContextRef _context;
    private protected readonly SvgDenseOptions Options;

    private protected SvgDenseEstimator(ContextRef context, SvgDenseOptions options, DenseTask task)
    {
        ArgumentNullException.ThrowIfNull(options);
        _context = context;
        Options = options.Clone();
        Options.Training = options.Training with { Task = task };
        if (task == DenseTask.Depth && (options.ScoresColumnName ?? options.ColorImageColumnName) is not null)
            throw new ArgumentException("Scores and colourised images exist for segmentation only.");
    }

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        if (!SchemaShapes.TryFind(inputSchema, Options.FeatureColumnName, out _)) throw SchemaErrors.Missing("features", Options.FeatureColumnName);
        if (!SchemaShapes.TryFind(inputSchema, Options.TargetColumnName, out _)) throw SchemaErrors.Missing("target", Options.TargetColumnName);
        return SchemaShapes.With(inputSchema, SvgDenseTransformer.OutputTypes(Options, Options.Training.NumClasses, Options.Height, Options.Width)
                                                  .Select(c => (c.Name, c.Type)).ToArray());
    }

    /// <summary>Reads the data, trains the head, returns the transformer.</summary>
    public SvgDenseTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        TorchRuntime.EnsureInitialized();
        var ml = _context.Resolve();
        var fcol = input.Schema.GetColumnOrNull(Options.FeatureColumnName) ?? throw SchemaErrors.Missing("features", Options.FeatureColumnName);
        var tcol = input.Schema.GetColumnOrNull(Options.TargetColumnName) ?? throw SchemaErrors.Missing("target", Options.TargetColumnName);
        var (c, h, w) = SvgDenseTransformer.FeatureShape(Options, fcol.Type);
        var (height, width) = TargetShape(tcol.Type);
        var features = new List<float>();
        var targets = new List<float>();
        long rows = 0;
        using (var cursor = input.GetRowCursor(new[] { fcol, tcol }))
        {
            var getF = cursor.GetGetter<VBuffer<float>>(fcol);
            var readT = TargetReader(cursor, tcol);
            VBuffer<float> f = default;
            while (cursor.MoveNext())
            {
                getF(ref f);
                if (f.Length != c * h * w) throw new SvgDataException(fcol.Name, cursor.Position, $"the vector has {f.Length} values, expected {c * h * w}.");
                var t = readT();
                if (t.Length != height * width) throw new SvgDataException(tcol.Name, cursor.Position, $"the target has {t.Length} values, expected {height}×{width}.");
                features.AddRange(f.DenseValues());
                targets.AddRange(t);
                rows++;
            }
        }
        if (rows == 0) throw new ArgumentException("The training data has no rows.");
        using var ft = tensor(features.ToArray()).reshape(rows, c, h, w);
        using var tt0 = tensor(targets.ToArray()).reshape(rows, height, width);
        using var tt = Options.Training.Task == DenseTask.Segmentation ? tt0.to(ScalarType.Int64) : tt0.alias();
        var result = DenseHeadTraining.Train(DenseDataset.FromTensors(ft, tt), Options.Training);   // the transformer owns its head
        return new SvgDenseTransformer(ml, Options, result.Head, height, width);
    }

    (int H, int W) TargetShape(DataViewType type)
    {
        if (type is not VectorDataViewType vt) throw SchemaErrors.WrongType("target", Options.TargetColumnName, "a vector [H, W]", type);
        if (Options.Height > 0 && Options.Width > 0) return (Options.Height, Options.Width);
        if (vt.Dimensions.Length == 2 && vt.Dimensions[0] > 0 && vt.Dimensions[1] > 0) return (vt.Dimensions[0], vt.Dimensions[1]);
        throw SchemaErrors.WrongType("target", Options.TargetColumnName, "a vector with dimensions [H, W] (or set Height and Width)", type);
    }

    /// <summary>Reads a target row as floats; key types map k → k − 1 and missing (0) → the ignore index.</summary>
    Func<float[]> TargetReader(DataViewRow row, DataViewSchema.Column col)
    {
        var vt = (VectorDataViewType)col.Type;
        float ignore = Options.Training.IgnoreIndex;
        Func<float[]> Make<T>(Func<T, float> map)
        {
            var g = row.GetGetter<VBuffer<T>>(col);
            VBuffer<T> v = default;
            return () => { g(ref v); return v.DenseValues().Select(map).ToArray(); };
        }
        if (vt.ItemType is KeyDataViewType) return Make<uint>(k => k == 0 ? ignore : k - 1f);
        if (vt.ItemType == NumberDataViewType.Single) return Make<float>(x => x);
        if (Options.Training.Task == DenseTask.Segmentation)
        {
            if (vt.ItemType == NumberDataViewType.Int32) return Make<int>(x => x);
            if (vt.ItemType == NumberDataViewType.UInt32) return Make<uint>(x => x);
            if (vt.ItemType == NumberDataViewType.Byte) return Make<byte>(x => x);
        }
        throw SchemaErrors.WrongType("target", col.Name, Options.Training.Task == DenseTask.Segmentation
            ? "a vector of class indices (Single, Int32, UInt32, Byte or a key type)" : "a Single vector of metres", col.Type);
    }
}
