using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Svg.ML.Data;
using Svg.ML.Diffusion;
using Svg.ML.Distributed;
using Svg.ML.Runtime;
using Svg.ML.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.MLNet;

/// <summary>
/// Trains a class-conditional SVG diffusion model (stage 2) on an IDataView: a feature column (C×h×w SVG features, as
/// <see cref="SvgFeaturizerTransformer"/> makes) or an image column featurized on the fly (with a feature cache), and
/// a key-typed label (MapValueToKey). <see cref="Fit"/> runs <see cref="DiffusionTraining"/> (AdamW, EMA, label dropout,
/// time shift, checkpoints and resume) and returns an <see cref="SvgGenerator"/> sampling with the EMA weights.
/// Progress: <see cref="Options.Progress"/> after every step, and messages in <see cref="MLContext.Log"/>.
/// </summary>
public sealed class SvgDiffusionTrainer : IEstimator<SvgGenerator>
{
    const string Component = "SvgDiffusionTrainer";

    /// <summary>Every setting of the trainer (defaults: the official SVG recipe).</summary>
    public sealed class Options
    {
        /// <summary>The feature column: a float vector with dimensions [C, h, w] (h = w).</summary>
        public string FeatureColumnName = "Features";

        /// <summary>Instead of <see cref="FeatureColumnName"/>: an image column, featurized with <see cref="Featurizer"/>.</summary>
        public string? ImageColumnName;

        /// <summary>The fitted featurizer for <see cref="ImageColumnName"/> (its feature map output is used; its learned
        /// per-channel statistics become the normalisation unless <see cref="Normalizer"/> is given).</summary>
        public SvgFeaturizerTransformer? Featurizer;

        /// <summary>With <see cref="ImageColumnName"/>: a feature-cache folder, so a second Fit on the same images and
        /// featurizer skips the featurization (null: featurize once per Fit, in memory).</summary>
        public string? FeatureCacheDirectory;

        /// <summary>The label column: a key type (MapValueToKey); its key count is the number of classes.</summary>
        public string LabelColumnName = "Label";

        /// <summary>Model size preset: S, B, L, XL or XXL (sized to the data's channels, grid and classes).</summary>
        public string ModelPreset = "S";

        /// <summary>Explicit width, overriding the preset's.</summary>
        public int? HiddenSize;

        /// <summary>Explicit depth, overriding the preset's.</summary>
        public int? Depth;

        /// <summary>Explicit head count, overriding the preset's.</summary>
        public int? NumHeads;

        /// <summary>A complete model configuration (overrides the preset and sizes; must match the data).</summary>
        public SvgDiTConfig? Model;

        /// <summary>Total optimisation steps (set this or <see cref="Epochs"/>).</summary>
        public long? Steps;

        /// <summary>Passes over the data (set this or <see cref="Steps"/>).</summary>
        public int? Epochs;

        /// <summary>Samples per step (official 256).</summary>
        public int BatchSize = 256;

        /// <summary>AdamW learning rate (official 1e-4).</summary>
        public double LearningRate = 1e-4;

        /// <summary>AdamW weight decay (official 0).</summary>
        public double WeightDecay;

        /// <summary>EMA decay per step (official 0.9999; lower it for short runs).</summary>
        public double EmaDecay = 0.9999;

        /// <summary>Label dropout for classifier-free guidance (official 0.1).</summary>
        public double ClassDropout = 0.1;

        /// <summary>Training time shift (official 0.4).</summary>
        public double TimeShift = RectifiedFlow.TrainingShift;

        /// <summary>Seed of the run; null = drawn from the MLContext (deterministic when it was created with a seed).</summary>
        public long? Seed;

        /// <summary>Checkpoint folder (null: none).</summary>
        public string? CheckpointDirectory;

        /// <summary>A checkpoint every this many steps.</summary>
        public int CheckpointEvery = 1000;

        /// <summary>Continue from the newest checkpoint in <see cref="CheckpointDirectory"/> (same settings and data).</summary>
        public bool Resume = true;

        /// <summary>Receives a report after every step.</summary>
        public IProgress<TrainingProgress>? Progress;

        /// <summary>Stops training after the current step (a checkpoint is written when enabled) with an
        /// <see cref="OperationCanceledException"/>.</summary>
        public CancellationToken CancellationToken;

        /// <summary>Fixed per-channel statistics (e.g. the official <c>dinov3_sp_stats.pt</c>); not disposed by the trainer.</summary>
        public FeatureNormalizer? Normalizer;

        /// <summary>The generator's sampler settings.</summary>
        public SamplerOptions Sampler = new();

        /// <summary>A fitted decoder, so that the generator can output images (shared, not owned).</summary>
        public SvgDecoderTransformer? Decoder;

        /// <summary>The generator's feature output column (null: none).</summary>
        public string? GeneratedFeatureColumnName = "GeneratedFeatures";

        /// <summary>The generator's image output column (with <see cref="Decoder"/>; null: none).</summary>
        public string? GeneratedImageColumnName = "GeneratedImage";

        /// <summary>The generator's optional seed column.</summary>
        public string? SeedColumnName;

        /// <summary>Rows the generator samples together (0: device default).</summary>
        public int GenerationBatchSize;

        /// <summary>CUDA device; null = the MLContext's <see cref="MLContext.GpuDeviceId"/>.</summary>
        public int? GpuDeviceId;

        /// <summary>Data-parallel training (and featurization into <see cref="FeatureCacheDirectory"/>, which must then be
        /// a folder all ranks see) over these ranks; null: detected — the MPI world when the process was launched by
        /// <c>mpiexec</c>/<c>srun</c> with several ranks (<see cref="ProcessGroup.LaunchedByMpi"/>), else one process.
        /// <see cref="BatchSize"/> is per rank. Every rank calls Fit with the same data.</summary>
        public ProcessGroup? ProcessGroup;

        /// <summary>Use the CPU when the GPU is unavailable; null = the MLContext's <see cref="MLContext.FallbackToCpu"/>.</summary>
        public bool? FallbackToCpu;

        /// <summary>On CUDA, let float32 matmuls and convolutions use TF32 tensor cores (official setting; default true).</summary>
        public bool AllowTf32 = true;

        /// <summary>Compute precision of training and of the returned generator's sampling (bf16: mixed precision with
        /// float32 master weights and optimiser state; see <see cref="DiffusionTrainingOptions.Precision"/>).</summary>
        public Precision Precision = Precision.Fp32;

        internal Options Clone() => (Options)MemberwiseClone();
    }

    readonly ContextRef _context;
    readonly Options _options;

    /// <summary>Creates the trainer; device, seed and log come from <paramref name="mlContext"/>.</summary>
    public SvgDiffusionTrainer(MLContext mlContext, Options options) : this(new ContextRef(mlContext), options) { }

    internal SvgDiffusionTrainer(ContextRef context, Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.ImageColumnName is not null && options.Featurizer is null)
            throw new ArgumentException("ImageColumnName needs a fitted Featurizer.");
        if (options.Featurizer is { } f && f.FeatureMapColumnName is null)
            throw new ArgumentException("The featurizer must output the feature map (FeatureMapColumnName).");
        if ((options.Steps is null) == (options.Epochs is null))
            throw new ArgumentException("Set exactly one of Steps and Epochs.");
        _context = context;
        _options = options.Clone();
    }

    /// <summary>The input schema (the generator adds columns to generation inputs, not to training data).</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        if (!SchemaShapes.TryFind(inputSchema, _options.LabelColumnName, out var label)) throw SchemaErrors.Missing("label", _options.LabelColumnName);
        if (!label.IsKey) throw SchemaErrors.WrongType("label", label.Name, "a key type (use MapValueToKey)", SchemaShapes.Describe(label));
        string input = _options.ImageColumnName ?? _options.FeatureColumnName;
        if (!SchemaShapes.TryFind(inputSchema, input, out var col)) throw SchemaErrors.Missing(_options.ImageColumnName is null ? "features" : "images", input);
        return inputSchema;
    }

    /// <summary>Reads the features and labels, trains, and returns the generator.</summary>
    public SvgGenerator Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        TorchRuntime.EnsureInitialized();
        var ml = _context.Resolve();
        var device = TorchRuntime.ResolveDevice(_options.GpuDeviceId ?? ml.GpuDeviceId, _options.FallbackToCpu ?? ml.FallbackToCpu);
        long seed = _options.Seed ?? SvgHost.Seed(ml, null, Component);
        var group = _options.ProcessGroup ?? ProcessGroup.FromEnvironment();
        device = group.DeviceFor(device);   // one GPU per rank: cuda:LocalRank

        var labelCol = input.Schema.GetColumnOrNull(_options.LabelColumnName) ?? throw SchemaErrors.Missing("label", _options.LabelColumnName);
        if (labelCol.Type is not KeyDataViewType { RawType: var raw, Count: > 0 } key || raw != typeof(uint))
            throw SchemaErrors.WrongType("label", labelCol.Name, "a UInt32 key type (use MapValueToKey)", labelCol.Type);
        int classes = checked((int)key.Count);

        IDataView view = input;
        string featureName = _options.FeatureColumnName;
        if (_options.ImageColumnName is { } images)
        {
            var f = _options.Featurizer!;
            if (f.InputColumnName != images)
                throw new ArgumentException($"The featurizer reads column '{f.InputColumnName}', not ImageColumnName '{images}'.");
            view = f.Transform(input);
            featureName = f.FeatureMapColumnName!;
        }
        var featureCol = view.Schema.GetColumnOrNull(featureName) ?? throw SchemaErrors.Missing("features", featureName);
        if (featureCol.Type is not VectorDataViewType { ItemType: var item, Dimensions.Length: 3 } vt || item != NumberDataViewType.Single)
            throw SchemaErrors.WrongType("features", featureName, "a float vector with dimensions [C, h, w] (SvgFeaturize's feature map)", featureCol.Type);
        int[] dims = vt.Dimensions.ToArray();
        labelCol = view.Schema[_options.LabelColumnName];

        DiffusionDataset dataset;
        Tensor? inMemory = null;
        if (_options.ImageColumnName is not null && _options.FeatureCacheDirectory is { } cacheDir)
        {
            var labels = ReadLabels(view, labelCol);      // the rows the featurizer keeps (it may skip bad images)
            var cached = FeaturizedImages.GetOrCompute(input, _options.Featurizer!, view, featureCol, dims, labels.Length, cacheDir, group,
                                                       message => SvgHost.Info(ml, Component, message), labelCol.Name);
            SvgHost.Info(ml, Component, $"features of {labels.Length} images from the feature cache {cached.Path}");
            dataset = DiffusionDataset.FromCache(cached, labels, classes);
        }
        else
        {
            var (features, labels) = ReadAll(view, featureCol, labelCol, dims);
            inMemory = features;
            dataset = DiffusionDataset.FromFeatures(features, labels, classes);
        }

        FeatureNormalizer? featurizerStats = null;
        try
        {
            var normalizer = _options.Normalizer;
            if (normalizer is null && _options.Featurizer is { } fz && _options.ImageColumnName is not null)
            {
                featurizerStats = fz.ToFeatureNormalizer();
                normalizer = featurizerStats;
            }
            var trainingOptions = new DiffusionTrainingOptions
            {
                Model = ResolveModel(dims[0], dims[1], classes),
                ClassDropout = _options.ClassDropout,
                TimeShift = _options.TimeShift,
                EmaDecay = _options.EmaDecay,
                Normalizer = normalizer,
                Steps = _options.Steps,
                Epochs = _options.Epochs,
                BatchSize = _options.BatchSize,
                LearningRate = _options.LearningRate,
                WeightDecay = _options.WeightDecay,
                Seed = seed,
                CheckpointDirectory = _options.CheckpointDirectory,
                CheckpointEvery = _options.CheckpointEvery,
                Resume = _options.Resume,
                Device = device,
                AllowTf32 = _options.AllowTf32,
                Precision = _options.Precision,
                ProcessGroup = group,
                Progress = _options.Progress,
                CancellationToken = _options.CancellationToken,
                Log = message => SvgHost.Info(ml, Component, message),
            };
            SvgHost.Info(ml, Component, $"training on {dataset.Count} samples [{string.Join("×", dims)}], {classes} classes, seed {seed}, device {device}");
            var result = DiffusionTraining.Train(dataset, trainingOptions);
            result.Model.Dispose();    // the generator samples with the EMA weights
            SvgHost.Info(ml, Component, $"trained {result.Steps} steps in {result.Elapsed.TotalSeconds:F1} s, final loss {result.LossHistory.LastOrDefault():G4}");
            var generatorOptions = new SvgGenerator.Options
            {
                LabelColumnName = _options.LabelColumnName,
                SeedColumnName = _options.SeedColumnName,
                FeatureColumnName = _options.GeneratedFeatureColumnName,
                ImageColumnName = _options.Decoder is null ? null : _options.GeneratedImageColumnName,
                Seed = seed,
                BatchSize = _options.GenerationBatchSize,
                Sampler = _options.Sampler,
                Precision = _options.Precision,
            };
            return SvgGenerator.FromTraining(ml, generatorOptions, result.EmaModel, result.Normalizer, _options.Decoder?.Model, device);
        }
        finally
        {
            featurizerStats?.Dispose();
            inMemory?.Dispose();
        }
    }

    SvgDiTConfig ResolveModel(int channels, int grid, int classes)
    {
        if (_options.Model is { } explicitConfig) return explicitConfig with { ClassDropoutProb = _options.ClassDropout };
        var preset = _options.ModelPreset.ToUpperInvariant() switch
        {
            "S" => SvgDiTConfig.S, "B" => SvgDiTConfig.B, "L" => SvgDiTConfig.L, "XL" => SvgDiTConfig.XL, "XXL" => SvgDiTConfig.XXL,
            _ => throw new ArgumentException($"Unknown ModelPreset '{_options.ModelPreset}': use S, B, L, XL or XXL."),
        };
        return preset with
        {
            InChannels = channels,
            GridSize = grid,
            NumClasses = classes,
            HiddenSize = _options.HiddenSize ?? preset.HiddenSize,
            Depth = _options.Depth ?? preset.Depth,
            NumHeads = _options.NumHeads ?? preset.NumHeads,
            ClassDropoutProb = _options.ClassDropout,
        };
    }

    // ---- reading the data ----

    static uint ReadKey(ValueGetter<uint> getter, string column, long row)
    {
        uint v = 0;
        getter(ref v);
        if (v == 0) throw new SvgDataException(column, row, "missing label (key value 0).");
        return v;
    }

    /// <summary>All features [N, C, h, w] and labels (class indices) in one pass.</summary>
    static (Tensor Features, long[] Labels) ReadAll(IDataView view, DataViewSchema.Column featureCol, DataViewSchema.Column labelCol, int[] dims)
    {
        int size = dims[0] * dims[1] * dims[2];
        var values = new List<float[]>();
        var labels = new List<long>();
        using (var cursor = view.GetRowCursor(new[] { featureCol, labelCol }))
        {
            var getFeatures = cursor.GetGetter<VBuffer<float>>(featureCol);
            var getLabel = cursor.GetGetter<uint>(labelCol);
            VBuffer<float> v = default;
            while (cursor.MoveNext())
            {
                labels.Add(ReadKey(getLabel, labelCol.Name, cursor.Position) - 1L);
                getFeatures(ref v);
                if (v.Length != size) throw new SvgDataException(featureCol.Name, cursor.Position, $"the vector has {v.Length} values, expected {size}.");
                var dense = new float[size];
                v.CopyTo(dense);
                values.Add(dense);
            }
        }
        if (values.Count == 0) throw new InvalidOperationException($"{Component}: the training data has no rows.");
        var all = new float[(long)values.Count * size];
        for (int i = 0; i < values.Count; i++) values[i].CopyTo(all, (long)i * size);
        return (tensor(all).reshape(values.Count, dims[0], dims[1], dims[2]), labels.ToArray());
    }

    static long[] ReadLabels(IDataView view, DataViewSchema.Column labelCol)
    {
        var labels = new List<long>();
        using var cursor = view.GetRowCursor(new[] { labelCol });
        var getLabel = cursor.GetGetter<uint>(labelCol);
        while (cursor.MoveNext()) labels.Add(ReadKey(getLabel, labelCol.Name, cursor.Position) - 1L);
        return labels.ToArray();
    }
}
