using Svg.ML.Runtime;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Svg.ML.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Training;

/// <summary>
/// The bookkeeping shared by both training loops: run length, resumption (finding the newest checkpoint and checking
/// that it belongs to the same settings and data), the loss history, divergence checks, checkpoint cadence,
/// cancellation and progress reports. The loops own the models and optimisers and supply snapshots of their state.
/// Data-parallel (<see cref="TrainingOptions.ProcessGroup"/>): the batch indices are this rank's share of the global
/// batch, the loss and the cancellation are agreed over the ranks, and only rank 0 writes checkpoints, logs and progress.
/// </summary>
internal sealed class TrainingRun
{
    /// <summary>Tensor name of the per-step loss history in checkpoints.</summary>
    public const string LossHistoryKey = TrainingCheckpoint.LossHistoryKey;

    readonly TrainingOptions _options;
    readonly JsonObject _trajectory;
    ProgressMeter? _meter;
    long _lastSavedStep = -1;
    readonly long _dataCount;
    int _orderEpoch = -1;
    long[] _order = [];

    public TrainingRun(TrainingStage stage, TrainingOptions options, JsonObject trajectory, long dataCount, int batchSize)
    {
        Stage = stage;
        _options = options;
        Group = options.ProcessGroup ?? ProcessGroup.Single;
        _trajectory = trajectory;
        _dataCount = dataCount;
        int world = Group.WorldSize;
        if (world > 1)
        {
            if ((long)batchSize * world > dataCount)
                throw new ArgumentException($"{world} ranks × batch {batchSize} need at least {(long)batchSize * world} samples; the data has {dataCount}.");
            trajectory["world_size"] = world;   // N ranks × B is another trajectory than one process with batch B
        }
        EffectiveBatchSize = (int)Math.Min((long)batchSize * world, dataCount);
        StepsPerEpoch = Math.Max(1, dataCount / EffectiveBatchSize);
        TotalSteps = options.Steps ?? checked(options.Epochs!.Value * StepsPerEpoch);
        OptionsHash = Hash(trajectory);
        Device = Group.DeviceFor(options.Device ?? CPU);
        MathSettings.ConfigureTf32(Device, options.AllowTf32);
    }

    /// <summary>The ranks of the run (<see cref="ProcessGroup.Single"/> for one process).</summary>
    public ProcessGroup Group { get; }

    public TrainingStage Stage { get; }

    /// <summary>Samples per step over all ranks: the batch size × ranks, or the data size when smaller.</summary>
    public int EffectiveBatchSize { get; }

    /// <summary>⌊N / batch⌋ (at least 1).</summary>
    public long StepsPerEpoch { get; }

    public long TotalSteps { get; }

    /// <summary>Steps completed before this run (0 unless resumed).</summary>
    public long StartStep { get; private set; }

    /// <summary>SHA-256 of the trajectory settings.</summary>
    public string OptionsHash { get; }

    public Device Device { get; }

    /// <summary>Per-step losses since step 1 (including resumed runs).</summary>
    public List<float> Losses { get; } = new();

    /// <summary>The newest checkpoint with finite weights (written or resumed from), or null.</summary>
    public string? LastCheckpoint { get; private set; }

    public TimeSpan Elapsed => _meter?.Elapsed ?? TimeSpan.Zero;

    public void Log(string message)
    {
        if (Group.IsWriter) _options.Log?.Invoke(message);
    }

    /// <summary>Epoch and position in the epoch of the (0-based) step index <paramref name="step"/>.</summary>
    public (int Epoch, long Position) Locate(long step) => ((int)(step / StepsPerEpoch), step % StepsPerEpoch);

    /// <summary>
    /// The data rows of step <paramref name="step"/>'s batch on this rank: its slice of the epoch's permutation, which
    /// is drawn from the seed and the epoch alone, so a resumed run sees the same batches as an uninterrupted one
    /// (with several ranks, this rank's share of that global batch: <see cref="DataSharding.RankBatch"/>).
    /// </summary>
    public long[] BatchIndices(long step)
    {
        var (epoch, position) = Locate(step);
        if (epoch != _orderEpoch)
        {
            _order = TrainingRandom.EpochPermutation(_options.Seed, epoch, _dataCount);
            _orderEpoch = epoch;
        }
        var batch = _order.AsSpan((int)(position * EffectiveBatchSize), EffectiveBatchSize).ToArray();
        return Group.WorldSize == 1 ? batch : DataSharding.RankBatch(batch, Group.Rank, Group.WorldSize);
    }

    /// <summary>
    /// Opens the checkpoint to continue from (null to start afresh). With <see cref="TrainingOptions.Resume"/> false the
    /// stage's checkpoints are deleted. A checkpoint of other settings or data throws <see cref="TrainingResumeException"/>.
    /// The caller restores its tensors and disposes it.
    /// </summary>
    public TrainingCheckpoint? OpenResume()
    {
        string? dir = _options.CheckpointDirectory;
        if (dir is null) return null;
        if (Group.IsWriter)   // rank 0 alone changes the directory; the others wait for it
        {
            int stale = TrainingCheckpoint.DeleteTemporaryFiles(dir, Stage);
            if (stale > 0) Log($"Removed {stale} temporary file(s) left by an interrupted checkpoint write in '{dir}'.");
            if (!_options.Resume)
            {
                if (TrainingCheckpoint.List(dir, Stage).Count > 0)
                    Log($"Resume = false: deleting the existing {TrainingCheckpoint.StagePrefix(Stage)} checkpoints in '{dir}'.");
                TrainingCheckpoint.DeleteAll(dir, Stage);
            }
        }
        Group.Barrier();
        if (!_options.Resume) return null;
        var checkpoint = TrainingCheckpoint.LoadLatest(dir, Stage, Log);
        if (checkpoint is null) return null;
        try
        {
            int ranks = checkpoint.State["world_size"]?.GetValue<int>() ?? 1;
            if (ranks != Group.WorldSize)
                throw new TrainingResumeException(checkpoint.Path,
                    $"it was written by a run on {ranks} rank(s) and this run has {Group.WorldSize}; resume with {ranks} rank(s) " +
                    "(the global batch, data order and noise depend on the number of ranks), or start afresh (Resume = false).");
            CheckSameRun(checkpoint);
            if (checkpoint.Step > TotalSteps)
                throw new TrainingResumeException(checkpoint.Path,
                    $"it is at step {checkpoint.Step}, beyond the {TotalSteps} steps requested; ask for more steps or start afresh (Resume = false).");
            StartStep = checkpoint.Step;
            var history = checkpoint.Get(LossHistoryKey);
            if (history.numel() != checkpoint.Step)
                throw new TrainingResumeException(checkpoint.Path, $"its loss history has {history.numel()} entries for {checkpoint.Step} steps.");
            Losses.AddRange(history.to(ScalarType.Float32).data<float>().ToArray());
            LastCheckpoint = checkpoint.Path;
            _lastSavedStep = checkpoint.Step;
            Log($"Resuming {TrainingCheckpoint.StagePrefix(Stage)} training from '{checkpoint.Path}' (step {checkpoint.Step} of {TotalSteps}).");
            return checkpoint;
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    void CheckSameRun(TrainingCheckpoint checkpoint)
    {
        string storedHash = checkpoint.State["options_hash"]?.GetValue<string>() ?? "";
        if (storedHash == OptionsHash) return;
        var stored = checkpoint.State["options"] as JsonObject ?? new JsonObject();
        var differences = new List<string>();
        foreach (var key in stored.Select(kv => kv.Key).Union(_trajectory.Select(kv => kv.Key)).Distinct().Order(StringComparer.Ordinal))
        {
            string a = stored[key]?.ToJsonString() ?? "(absent)", b = _trajectory[key]?.ToJsonString() ?? "(absent)";
            if (a != b) differences.Add($"{key}: checkpoint {Shorten(a)}, now {Shorten(b)}");
        }
        string what = differences.Count == 0 ? "the settings hash differs" : string.Join("; ", differences);
        throw new TrainingResumeException(checkpoint.Path,
            $"it was written by a run with other settings or data ({what}). Use the same settings, another CheckpointDirectory, or Resume = false to start afresh.");
    }

    static string Shorten(string s) => s.Length <= 80 ? s : s[..77] + "...";

    /// <summary>Starts timing (call once before the first step of this run).</summary>
    public void Start()
    {
        _meter = new ProgressMeter(Stage, StartStep, TotalSteps);
        Log($"{TrainingCheckpoint.StagePrefix(Stage)} training: steps {StartStep + 1}..{TotalSteps}, batch {EffectiveBatchSize}, " +
            $"{StepsPerEpoch} steps per epoch, device {Device}.");
        if (Group.WorldSize == 1) return;
        int b = EffectiveBatchSize / Group.WorldSize;   // every rank says where it runs; rank 0 logs them all
        var ranks = Group.AllGatherText($"{Group.Description}: device {Device}, rows [{Group.Rank * b}, {(Group.Rank + 1) * b}) of each global batch");
        Log($"Data-parallel over {Group.WorldSize} ranks, batch {b} per rank; gradients averaged through host memory" +
            (Device.type == DeviceType.CUDA ? " (GPU → host → MPI → GPU: MPI.NET has no CUDA-aware path)." : "."));
        foreach (var rank in ranks) Log($"  {rank}.");
    }

    /// <summary>A gradient averager over the ranks for <paramref name="parameters"/> (null for one process).</summary>
    public GradientAllReduce? GradientReducer(IEnumerable<TorchSharp.Modules.Parameter> parameters)
    {
        if (Group.WorldSize == 1) return null;
        var reducer = new GradientAllReduce(Group, parameters);
        Log($"{char.ToUpperInvariant(reducer.Description[0])}{reducer.Description[1..]}.");
        return reducer;
    }

    /// <summary>
    /// The loss of the step over all ranks (their mean; with equal per-rank batches, the loss of the global batch).
    /// Throws <see cref="TrainingDivergedException"/> on every rank when it is NaN or infinite on any rank.
    /// </summary>
    public float AgreeLoss(long step, string what, float local)
    {
        if (Group.WorldSize > 1)
        {
            Span<double> sum = [local];
            Group.AllReduceSum(sum);
            local = (float)(sum[0] / Group.WorldSize);
        }
        CheckFinite(step, what, local);
        return local;
    }

    /// <summary>Throws <see cref="TrainingDivergedException"/> when <paramref name="value"/> is NaN or infinite.</summary>
    public void CheckFinite(long step, string what, double value)
    {
        if (double.IsFinite(value)) return;
        FinishProgressLine();
        throw new TrainingDivergedException(Stage, step, what, value, LastCheckpoint);
    }

    void FinishProgressLine()
    {
        if (_options.Progress is ConsoleProgressBar bar) bar.Finish();
    }

    /// <summary>Throws <see cref="TrainingDivergedException"/> when a tensor holds NaN or ±∞.</summary>
    public void CheckFinite(long step, IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        using var _ = no_grad();
        foreach (var (name, t) in tensors)
        {
            if (!t.is_floating_point()) continue;
            using var scope = NewDisposeScope();
            var finite = t.isfinite().all();
            if (finite.item<bool>()) continue;
            var bad = t.masked_select(t.isfinite().logical_not()).flatten();
            double value = bad.numel() > 0 ? bad[0].to(ScalarType.Float64).item<double>() : double.NaN;
            FinishProgressLine();
            throw new TrainingDivergedException(Stage, step, $"weight '{name}'", value, LastCheckpoint);
        }
    }

    /// <summary>
    /// To call at the top of each step (before it runs) with the steps completed so far: on cancellation, writes a
    /// checkpoint of the completed steps (if not yet written) and throws <see cref="TrainingCanceledException"/>.
    /// </summary>
    public void ThrowIfCanceled(long completed, Func<CheckpointSnapshot> snapshot)
    {
        bool canceled = _options.CancellationToken.IsCancellationRequested;
        if (Group.WorldSize > 1) canceled = Group.Any(canceled);   // every rank stops at the same step
        if (!canceled) return;
        if (_options.CheckpointDirectory is not null && completed > _lastSavedStep && completed > 0)
            Save(completed, snapshot);
        FinishProgressLine();
        throw new TrainingCanceledException(Stage, completed, LastCheckpoint, _options.CancellationToken);
    }

    /// <summary>
    /// Records the completed step <paramref name="step"/> (1-based): loss history, progress report, and a checkpoint
    /// when due (every <see cref="TrainingOptions.CheckpointEvery"/> steps and at the last step).
    /// </summary>
    public void Completed(long step, float loss, double learningRate, Func<CheckpointSnapshot> snapshot,
                          IReadOnlyDictionary<string, double>? metrics = null)
    {
        Losses.Add(loss);
        var (epoch, _) = Locate(step - 1);
        if (Group.IsWriter) _options.Progress?.Report(_meter!.Record(step, epoch, loss, learningRate, metrics));
        bool due = step == TotalSteps || (_options.CheckpointEvery > 0 && step % _options.CheckpointEvery == 0);
        if (due && _options.CheckpointDirectory is not null) Save(step, snapshot);
    }

    /// <summary>Checks the weights, then writes a checkpoint of <paramref name="step"/> completed steps (rank 0; the
    /// other ranks check their weights — equal to rank 0's — and record the path).</summary>
    public string Save(long step, Func<CheckpointSnapshot> snapshot)
    {
        string dir = _options.CheckpointDirectory ?? throw new InvalidOperationException("No CheckpointDirectory.");
        using var scope = NewDisposeScope();   // state-dict handles, finiteness checks, copies
        var snap = snapshot();
        try
        {
            CheckFinite(step, snap.Weights);
            var (epoch, position) = Locate(step);
            var state = new JsonObject
            {
                ["epoch"] = epoch,
                ["position_in_epoch"] = position,
                ["steps_per_epoch"] = StepsPerEpoch,
                ["options_hash"] = OptionsHash,
                ["options"] = _trajectory.DeepClone(),
                ["saved_utc"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            };
            foreach (var (k, v) in snap.State) state[k] = v?.DeepClone();
            if (Group.WorldSize > 1) state["world_size"] = Group.WorldSize;
            using var history = tensor(Losses.ToArray());
            var tensors = snap.Tensors.Append(new KeyValuePair<string, Tensor>(LossHistoryKey, history));
            string path = Group.IsWriter
                ? TrainingCheckpoint.Write(dir, Stage, step, tensors, state, _options.KeepLast)
                : Path.Combine(dir, TrainingCheckpoint.FileName(Stage, step));
            LastCheckpoint = path;
            _lastSavedStep = step;
            Log($"Checkpoint written: '{path}' (step {step}).");
            return path;
        }
        finally { snap.Dispose(); }
    }

    /// <summary>The values of scalar tensors (any device) as float32, read in one device→host copy.</summary>
    public static float[] ReadScalars(IEnumerable<Tensor> scalars)
    {
        using var scope = NewDisposeScope();
        return stack(scalars.Select(t => t.detach().reshape(1).to(ScalarType.Float32)).ToArray()).view(-1).cpu().data<float>().ToArray();
    }

    /// <summary>SHA-256 (hex) of the canonical JSON of <paramref name="json"/>.</summary>
    public static string Hash(JsonObject json) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(json.ToJsonString()))).ToLowerInvariant();
}
