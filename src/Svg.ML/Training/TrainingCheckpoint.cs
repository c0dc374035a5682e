using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Svg.ML.Checkpoints;
using static TorchSharp.torch;

namespace Svg.ML.Training;

/// <summary>
/// A training checkpoint: one safetensors file (written and read tensor by tensor, so its size is not limited by
/// memory) holding every tensor needed to continue (weights, EMA weights,
/// optimiser moments, generator states, loss history, …) and, in its metadata under <see cref="StateKey"/>, a JSON
/// state (stage, step, epoch, the run's settings and their hash, the data identity).
/// <para>
/// Files in a checkpoint directory: <c>{stage}-step{step:D9}.safetensors</c> and the pointer
/// <c>{stage}-latest.json</c> (<c>{"file": …, "step": …}</c>), where stage is <c>autoencoder</c> or <c>diffusion</c>, so
/// both stages can share a directory. Every file is written atomically: to a temporary file in the same directory,
/// flushed to disk, then renamed over the final name; the pointer is updated last. A crash leaves at worst a stray
/// <c>*.tmp</c> file, which readers ignore, and the previous checkpoints intact.
/// </para>
/// </summary>
public sealed class TrainingCheckpoint : IDisposable
{
    /// <summary>Metadata key of the JSON state.</summary>
    public const string StateKey = "svg.training";

    /// <summary>Tensor name of the per-step loss history (float32 [step]).</summary>
    public const string LossHistoryKey = "loss_history";

    /// <summary>Version of the layout written by this library.</summary>
    public const int FormatVersion = 1;

    TrainingCheckpoint(string path, TrainingStage stage, long step, JsonObject state, Dictionary<string, Tensor> tensors)
    {
        Path = path; Stage = stage; Step = step; State = state; Tensors = tensors;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>The stage that wrote it.</summary>
    public TrainingStage Stage { get; }

    /// <summary>Steps completed when it was written.</summary>
    public long Step { get; }

    /// <summary>The JSON state (<c>stage</c>, <c>step</c>, <c>format_version</c> and what the trainer stored).</summary>
    public JsonObject State { get; }

    /// <summary>The tensors (CPU), owned by this object.</summary>
    public Dictionary<string, Tensor> Tensors { get; }

    /// <summary>The tensors whose name starts with <paramref name="prefix"/>, with the prefix removed (not copies).</summary>
    public Dictionary<string, Tensor> WithPrefix(string prefix) => StateDict.WithPrefix(Tensors, prefix);

    /// <summary>The tensor <paramref name="name"/>; <see cref="InvalidDataException"/> when absent.</summary>
    public Tensor Get(string name) =>
        Tensors.TryGetValue(name, out var t) ? t : throw new InvalidDataException($"Checkpoint '{Path}' has no tensor '{name}'.");

    /// <summary>File-name prefix of a stage.</summary>
    public static string StagePrefix(TrainingStage stage) => stage switch
    {
        TrainingStage.Autoencoder => "autoencoder",
        TrainingStage.Diffusion => "diffusion",
        TrainingStage.Segmentation => "segmentation",
        TrainingStage.Depth => "depth",
        _ => throw new ArgumentOutOfRangeException(nameof(stage)),
    };

    /// <summary>The file name of the checkpoint of <paramref name="stage"/> at <paramref name="step"/>.</summary>
    public static string FileName(TrainingStage stage, long step) =>
        $"{StagePrefix(stage)}-step{step.ToString("D9", CultureInfo.InvariantCulture)}.safetensors";

    /// <summary>The path of the "latest" pointer of <paramref name="stage"/> in <paramref name="directory"/>.</summary>
    public static string PointerPath(string directory, TrainingStage stage) =>
        System.IO.Path.Combine(directory, $"{StagePrefix(stage)}-latest.json");

    /// <summary>Complete checkpoint files of <paramref name="stage"/> in <paramref name="directory"/>, oldest first
    /// (temporary files are not listed).</summary>
    public static IReadOnlyList<(long Step, string Path)> List(string directory, TrainingStage stage)
    {
        if (!Directory.Exists(directory)) return [];
        var pattern = new Regex($"^{Regex.Escape(StagePrefix(stage))}-step(\\d+)\\.safetensors$", RegexOptions.CultureInvariant);
        return Directory.EnumerateFiles(directory)
            .Select(p => (Path: p, Match: pattern.Match(System.IO.Path.GetFileName(p))))
            .Where(x => x.Match.Success)
            .Select(x => (long.Parse(x.Match.Groups[1].Value, CultureInfo.InvariantCulture), x.Path))
            .OrderBy(x => x.Item1)
            .ToList();
    }

    /// <summary>
    /// The path named by the "latest" pointer when it exists and names an existing file, else the newest checkpoint
    /// file, else null. (For tools; <see cref="LoadLatest"/> validates the files.)
    /// </summary>
    public static string? LatestPath(string directory, TrainingStage stage)
    {
        string pointer = PointerPath(directory, stage);
        if (File.Exists(pointer))
        {
            try
            {
                var file = JsonNode.Parse(File.ReadAllText(pointer))?["file"]?.GetValue<string>();
                if (file is not null)
                {
                    string path = System.IO.Path.Combine(directory, file);
                    if (File.Exists(path)) return path;
                }
            }
            catch (JsonException) { }
        }
        var all = List(directory, stage);
        return all.Count == 0 ? null : all[^1].Path;
    }

    /// <summary>
    /// Writes a checkpoint atomically (temporary file, flush, rename), then the "latest" pointer, then deletes the
    /// oldest checkpoints of the stage beyond <paramref name="keepLast"/> (0 keeps all). Returns the path.
    /// </summary>
    /// <param name="directory">Created if needed.</param>
    /// <param name="stage">The stage (file prefix).</param>
    /// <param name="step">Steps completed.</param>
    /// <param name="tensors">Tensors to store (any device; written from CPU copies).</param>
    /// <param name="state">JSON state; <c>stage</c>, <c>step</c> and <c>format_version</c> are added.</param>
    /// <param name="keepLast">Checkpoints of this stage to keep, including the new one (0: all).</param>
    public static string Write(string directory, TrainingStage stage, long step, IEnumerable<KeyValuePair<string, Tensor>> tensors,
                               JsonObject state, int keepLast = 0)
    {
        Directory.CreateDirectory(directory);
        var full = (JsonObject)state.DeepClone();
        full["stage"] = StagePrefix(stage);
        full["step"] = step;
        full["format_version"] = FormatVersion;
        var metadata = new Dictionary<string, string> { ["format"] = "pt", [StateKey] = full.ToJsonString() };

        string name = FileName(stage, step);
        string path = System.IO.Path.Combine(directory, name);
        var list = tensors.ToList();
        WriteAtomically(path, stream => StreamingSafeTensors.Write(stream, list, metadata));

        var pointer = new JsonObject { ["file"] = name, ["step"] = step, ["written_utc"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture) };
        WriteAtomically(PointerPath(directory, stage), stream =>
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(pointer.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            stream.Write(bytes);
        });

        if (keepLast > 0)
        {
            var all = List(directory, stage);
            foreach (var (s, p) in all.Take(Math.Max(0, all.Count - keepLast)))
                if (s != step) TryDelete(p);
        }
        return path;
    }

    /// <summary>
    /// Writes a file through a uniquely named temporary file in the same directory, flushed to disk before it is
    /// renamed over <paramref name="path"/>; on failure the temporary file is removed and <paramref name="path"/> is
    /// untouched.
    /// </summary>
    public static void WriteAtomically(string path, Action<Stream> write)
    {
        string tmp = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>
    /// Reads a checkpoint file. Throws <see cref="TrainingResumeException"/> when it is not a complete training
    /// checkpoint (truncated, corrupt, or without the training state).
    /// </summary>
    public static TrainingCheckpoint Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Training checkpoint not found: '{path}'.", path);
        (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) contents;
        try { contents = StreamingSafeTensors.Read(path); }
        catch (Exception e) when (e is InvalidDataException or JsonException or InvalidOperationException or FormatException or NullReferenceException or IOException)
        {
            throw new TrainingResumeException(path, "the file is not a complete safetensors file (" + e.Message + ").");
        }
        try
        {
            if (!contents.Metadata.TryGetValue(StateKey, out var json))
                throw new TrainingResumeException(path, $"the file has no training state (metadata '{StateKey}'); it is not a training checkpoint.");
            JsonObject state;
            try { state = JsonNode.Parse(json)!.AsObject(); }
            catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException)
            {
                throw new TrainingResumeException(path, "its training state is not valid JSON.");
            }
            int version = state["format_version"]?.GetValue<int>() ?? 0;
            if (version != FormatVersion)
                throw new TrainingResumeException(path, $"checkpoint format version {version}; this library reads version {FormatVersion}.");
            string stageName = state["stage"]?.GetValue<string>() ?? "";
            var stage = stageName switch
            {
                "autoencoder" => TrainingStage.Autoencoder,
                "diffusion" => TrainingStage.Diffusion,
                "segmentation" => TrainingStage.Segmentation,
                "depth" => TrainingStage.Depth,
                _ => throw new TrainingResumeException(path, $"unknown stage '{stageName}'."),
            };
            long step = state["step"]?.GetValue<long>() ?? throw new TrainingResumeException(path, "the training state has no step.");
            return new TrainingCheckpoint(path, stage, step, state, contents.Tensors);
        }
        catch
        {
            foreach (var t in contents.Tensors.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The newest checkpoint of <paramref name="stage"/> in <paramref name="directory"/> that reads completely, or null
    /// when there is none. Unreadable files (e.g. cut short by a crash) are skipped, with a note to <paramref name="log"/>.
    /// </summary>
    public static TrainingCheckpoint? LoadLatest(string directory, TrainingStage stage, Action<string>? log = null)
    {
        foreach (var (_, path) in List(directory, stage).Reverse())
        {
            try
            {
                var checkpoint = Load(path);
                if (checkpoint.Stage == stage) return checkpoint;
                checkpoint.Dispose();
            }
            catch (TrainingResumeException e)
            {
                log?.Invoke($"Skipping unreadable checkpoint: {e.Message}");
            }
        }
        return null;
    }

    /// <summary>Deletes the checkpoints, pointer and leftover temporary files of <paramref name="stage"/>.</summary>
    public static void DeleteAll(string directory, TrainingStage stage)
    {
        if (!Directory.Exists(directory)) return;
        foreach (var (_, path) in List(directory, stage)) TryDelete(path);
        TryDelete(PointerPath(directory, stage));
        DeleteTemporaryFiles(directory, stage);
    }

    /// <summary>Deletes temporary files left by interrupted writes of <paramref name="stage"/>.</summary>
    public static int DeleteTemporaryFiles(string directory, TrainingStage stage)
    {
        if (!Directory.Exists(directory)) return 0;
        int n = 0;
        foreach (var path in Directory.EnumerateFiles(directory, StagePrefix(stage) + "-*.tmp"))
            if (TryDelete(path)) n++;
        return n;
    }

    static bool TryDelete(string path)
    {
        try
        {
            if (!File.Exists(path)) return false;
            File.Delete(path);
            return true;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
        Tensors.Clear();
    }
}
