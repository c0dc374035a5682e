namespace Svg.ML.Checkpoints;

/// <summary>
/// A checkpoint file that cannot be read: empty, truncated, not a known format, or inconsistent.
/// The message always names the file and the problem. Derives from <see cref="IOException"/>, like
/// <see cref="FileNotFoundException"/>, so one <c>catch (IOException)</c> covers every unreadable checkpoint.
/// </summary>
public class CheckpointFormatException : IOException
{
    /// <summary>The file (or folder) that was being read.</summary>
    public string FilePath { get; }

    /// <summary>Creates the exception; the message becomes "<c>Checkpoint '{path}': {problem}</c>".</summary>
    public CheckpointFormatException(string path, string problem, Exception? inner = null)
        : base($"Checkpoint '{path}': {problem}", inner)
    {
        FilePath = path;
    }
}

/// <summary>
/// A pickle that references a Python global outside the allow-list (for example <c>os.system</c> or
/// <c>builtins.eval</c>). Raised while the pickle is parsed, before any tensor data is read; nothing is ever
/// executed by the reader, so such a file is refused rather than run.
/// </summary>
public sealed class UnsafeCheckpointException : CheckpointFormatException
{
    /// <summary>The refused global, as <c>module.name</c> (after the Python 2 → 3 name mapping pickle applies).</summary>
    public string Global { get; }

    /// <summary>Creates the exception for <paramref name="global"/>; <paramref name="why"/> says why it is refused.</summary>
    public UnsafeCheckpointException(string path, string global, string why, bool canBeAllowed)
        : base(path, $"refused: the pickle references the Python global '{global}' ({why}). Only tensor storages and " +
                     "plain data containers are allowed (like torch.load(weights_only=True)); nothing was executed." +
                     (canBeAllowed ? " If the file comes from a trusted source and this class is inert data, allow it with PickleAllowList.With." : ""))
    {
        Global = global;
    }
}
