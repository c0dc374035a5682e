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

    /// <summary>Instead of <see cref="FeatureColumnName"/>: an image column, featurized with <see cref="Featurizer"/>
    /// (its feature map). The fitted transformer then reads the featurizer's feature-map column: apply the featurizer
    /// before it at prediction time (<c>featurizer.Append(head)</c>).</summary>
    public string? ImageColumnName;

    /// <summary>The fitted featurizer for <see cref="ImageColumnName"/> (shared, not owned).</summary>
    public SvgFeaturizerTransformer? Featurizer;

    /// <summary>With <see cref="ImageColumnName"/>: a feature-cache folder. The encoder runs once per image into it
    /// (chunk by chunk, so memory holds one batch of features), training streams its rows from disk, and a later Fit on
    /// the same images and featurizer (another head, a resumed run) reads it instead of running the encoder. Without it
    /// the feature rows are read into memory once per Fit.</summary>
    public string? FeatureCacheDirectory;

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
/// The shared estimator: <see cref="Fit"/> reads the targets into memory and the features into memory or, with an
/// image column, a featurizer and <see cref="SvgDenseOptions.FeatureCacheDirectory"/>, through the on-disk feature
/// cache; trains the head with <see cref="DenseHeadTraining"/> (progress, cancellation, checkpoints and resume from
/// <see cref="SvgDenseOptions.Training"/>) and returns the <see cref="SvgDenseTransformer"/>.
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

    /// <summary>Reads the data (features into memory, or through the feature cache), trains the head, returns the transformer.</summary>
    public SvgDenseTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        TorchRuntime.EnsureInitialized();
        var ml = _context.Resolve();
        var options = Options.Clone();
        IDataView view = input;
        if (Options.ImageColumnName is { } images)
        {
            var f = Options.Featurizer ?? throw new ArgumentException("ImageColumnName needs a fitted Featurizer.");
            if (f.InputColumnName != images)
                throw new ArgumentException($"The featurizer reads column '{f.InputColumnName}', not ImageColumnName '{images}'.");
            view = f.Transform(input);
            options.FeatureColumnName = f.FeatureMapColumnName ?? throw new ArgumentException("The featurizer has no feature-map output (set FeatureMapColumnName).");
            options.ImageColumnName = null;
            options.Featurizer = null;
        }
        else if (Options.FeatureCacheDirectory is not null)
            throw new ArgumentException("FeatureCacheDirectory works with ImageColumnName and Featurizer (the cache is keyed by the images).");
        var fcol = view.Schema.GetColumnOrNull(options.FeatureColumnName) ?? throw SchemaErrors.Missing("features", options.FeatureColumnName);
        var tcol = view.Schema.GetColumnOrNull(Options.TargetColumnName) ?? throw SchemaErrors.Missing("target", Options.TargetColumnName);
        var (c, h, w) = SvgDenseTransformer.FeatureShape(options, fcol.Type);
        var (height, width) = TargetShape(tcol.Type);

        DenseDataset data;
        Tensor? features = null;
        using var targets = ReadTargets(view, tcol, height, width);    // the rows the featurizer keeps (it may skip bad images)
        if (Options.FeatureCacheDirectory is { } cacheDir)
        {
            var cached = FeaturizedImages.GetOrCompute(input, Options.Featurizer!, view, fcol, [c, h, w], targets.shape[0], cacheDir, Distributed.ProcessGroup.Single,
                                                       message => SvgHost.Info(ml, Component, message));
            SvgHost.Info(ml, Component, $"features of {cached.Count} images from the feature cache {cached.Path}");
            data = DenseDataset.FromCache(cached, targets);
        }
        else
        {
            features = ReadFeatures(view, fcol, c, h, w);
            data = DenseDataset.FromTensors(features, targets);
        }
        try
        {
            var training = Options.Training with { Log = Options.Training.Log ?? (message => SvgHost.Info(ml, Component, message)) };
            var result = DenseHeadTraining.Train(data, training);   // the transformer owns its head
            return new SvgDenseTransformer(ml, options, result.Head, height, width);
        }
        finally { features?.Dispose(); }
    }

    string Component => Options.Training.Task == DenseTask.Segmentation ? "SvgSegmentation" : "SvgDepth";

    /// <summary>All feature rows [N, C, h, w] in one pass (the upstream encoder runs once per row).</summary>
    static Tensor ReadFeatures(IDataView view, DataViewSchema.Column fcol, int c, int h, int w)
    {
        int size = c * h * w;
        var rows = new List<float[]>();
        using (var cursor = view.GetRowCursor(new[] { fcol }))
        {
            var getF = cursor.GetGetter<VBuffer<float>>(fcol);
            VBuffer<float> f = default;
            while (cursor.MoveNext())
            {
                getF(ref f);
                if (f.Length != size) throw new SvgDataException(fcol.Name, cursor.Position, $"the vector has {f.Length} values, expected {c}×{h}×{w}.");
                var dense = new float[size];
                f.CopyTo(dense);
                rows.Add(dense);
            }
        }
        var all = new float[(long)rows.Count * size];
        for (int i = 0; i < rows.Count; i++) rows[i].CopyTo(all, (long)i * size);
        return tensor(all).reshape(rows.Count, c, h, w);
    }

    /// <summary>All target rows [N, H, W]: metres (float32) for depth; class indices for segmentation, as int16 when
    /// the classes and the ignore index fit (a quarter of int64's memory), else int64.</summary>
    Tensor ReadTargets(IDataView view, DataViewSchema.Column tcol, int height, int width)
    {
        var rows = new List<float[]>();
        using (var cursor = view.GetRowCursor(new[] { tcol }))
        {
            var readT = TargetReader(cursor, tcol);
            while (cursor.MoveNext())
            {
                var t = readT();
                if (t.Length != height * width) throw new SvgDataException(tcol.Name, cursor.Position, $"the target has {t.Length} values, expected {height}×{width}.");
                rows.Add(t);
            }
        }
        if (rows.Count == 0) throw new ArgumentException("The training data has no rows.");
        var all = new float[(long)rows.Count * height * width];
        for (int i = 0; i < rows.Count; i++) rows[i].CopyTo(all, (long)i * height * width);
        using var t0 = tensor(all).reshape(rows.Count, height, width);
        var train = Options.Training;
        if (train.Task == DenseTask.Depth) return t0.alias();
        bool small = train.NumClasses <= short.MaxValue && train.IgnoreIndex is >= short.MinValue and <= short.MaxValue;
        return t0.to(small ? ScalarType.Int16 : ScalarType.Int64);
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
