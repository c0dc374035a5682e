using System.Text.Json;
using Svg.ML.Training;
using Svg.Quickstart;

namespace Svg.ML.PaperClaims;

/// <summary>An FD measured after <paramref name="Step"/> DiT training steps.</summary>
public sealed record CurvePoint(int Step, FdPair Fd);

/// <summary>What was measured for one arm (plain data, serialisable).</summary>
public sealed record ArmResults(
    string Name, string Key, long TrainableEncoderParameters, ReconstructionReport Reconstruction, FdPair ReconstructionFd,
    IReadOnlyList<CurvePoint> Curve, IReadOnlyDictionary<int, FdPair> BySamplingSteps, FdPair ResampledFd, ProbeResult Probe,
    long TrainCount, long TestCount, double Stage1Seconds, double FeaturizeSeconds, double Stage2Seconds, double EvaluationSeconds)
{
    public static ArmResults From(Arm a) => new(
        a.Name, a.Key, a.TrainableEncoderParameters, a.Reconstruction!, a.ReconstructionFd!,
        a.Curve.Select(p => new CurvePoint(p.Step, p.Fd)).ToList(), new SortedDictionary<int, FdPair>(a.BySamplingSteps), a.ResampledFd!, a.Probe!,
        a.Train!.Count, a.Test!.Count, a.Stage1Time.TotalSeconds, a.FeaturizeTime.TotalSeconds, a.Stage2Time.TotalSeconds, a.EvaluationTime.TotalSeconds);
}

/// <summary>How and where the run happened.</summary>
public sealed record RunInfo(string Command, DateTime StartUtc, string Machine, int Threads, string LoadAtStart, string LoadAtEnd,
                             double WallMinutes, double CpuMinutes);

/// <summary>
/// Everything docs/results.md is written from, saved beside it as <c>docs/results/measurements.json</c> so that the
/// report can be rewritten without rerunning (<c>--report-only</c>).
/// </summary>
public sealed record ResultsData(
    ClaimsOptions Options, RunInfo Run, string DataDescription, IReadOnlyList<string> ClassNames, int TestImages,
    string ResNetName, string CnnName, FdPair Reference, ProbeResult ProbeBase, ArmResults Svg, ArmResults Plain)
{
    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public void Save(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, Json));

    public static ResultsData Load(string path) =>
        JsonSerializer.Deserialize<ResultsData>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path} holds no results.");
}
