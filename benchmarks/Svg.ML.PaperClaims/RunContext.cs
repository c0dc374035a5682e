using System.Runtime.InteropServices;

namespace Svg.ML.PaperClaims;

/// <summary>How, where and when the results were produced (written into the report).</summary>
public sealed class RunContext
{
    public required string Command { get; init; }
    public required DateTime StartUtc { get; init; }
    public required string Machine { get; init; }
    public required string LoadAtStart { get; init; }
    public string LoadAtEnd { get; private set; } = "";
    public TimeSpan Elapsed { get; private set; }
    public TimeSpan ProcessCpu { get; private set; }

    public static RunContext Capture(IReadOnlyList<string> args, ClaimsOptions o) => new()
    {
        Command = "dotnet run -c Release --project benchmarks/Svg.ML.PaperClaims" + (args.Count > 0 ? " -- " + string.Join(' ', args) : ""),
        StartUtc = DateTime.UtcNow,
        Machine = Describe(),
        LoadAtStart = LoadAverage(),
    };

    public void Finish(TimeSpan elapsed)
    {
        Elapsed = elapsed;
        LoadAtEnd = LoadAverage();
        ProcessCpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
    }

    static string Describe()
    {
        string cpu = "unknown CPU";
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            if (line is not null) cpu = line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return $"{cpu}, {Environment.ProcessorCount} logical cores, {GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1L << 30)} GiB, " +
               $"{RuntimeInformation.OSDescription.Trim()}, .NET {Environment.Version}, TorchSharp {typeof(TorchSharp.torch).Assembly.GetName().Version} (CPU)";
    }

    /// <summary>The 1/5/15-minute load averages (Linux), e.g. "5.2 / 6.0 / 6.8".</summary>
    public static string LoadAverage()
    {
        try
        {
            var parts = File.ReadAllText("/proc/loadavg").Split(' ');
            return $"{parts[0]} / {parts[1]} / {parts[2]}";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or IndexOutOfRangeException) { return "n/a"; }
    }
}
