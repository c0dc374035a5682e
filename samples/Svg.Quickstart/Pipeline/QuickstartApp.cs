namespace Svg.Quickstart;

/// <summary>The command line of the quickstart: options, the data check, the run, exit codes.</summary>
public static class QuickstartApp
{
    /// <summary>
    /// Runs the quickstart for <paramref name="args"/>. Exit codes: 0 done (or --help), 1 bad options or a failed run,
    /// 2 Fashion-MNIST missing (no --data): where it was looked for is printed. Without --data it reads
    /// <paramref name="fashionMnistDirectory"/> (default <see cref="Svg.ML.Data.FashionMnist.DefaultDirectory"/>: the
    /// subset bundled in the repository's data/ folder).
    /// </summary>
    public static int Run(IReadOnlyList<string> args, TextWriter? output = null, TextWriter? error = null,
                           string? fashionMnistDirectory = null)
    {
        fashionMnistDirectory ??= Svg.ML.Data.FashionMnist.DefaultDirectory;
        output ??= Console.Out;
        error ??= Console.Error;
        QuickstartOptions options;
        try { options = QuickstartOptions.Parse(args); }
        catch (ArgumentException e)
        {
            error.WriteLine(e.Message);
            return 1;
        }
        if (options.Help)
        {
            output.WriteLine(QuickstartOptions.Usage);
            return 0;
        }
        if (options.DataPath is null && !QuickstartData.IsIdxFolder(fashionMnistDirectory))
        {
            error.WriteLine($"Fashion-MNIST was not found in {fashionMnistDirectory}. The quickstart downloads nothing: it reads " +
                            "the subset bundled in the repository's data/fashion-mnist folder (run it from a clone, or set " +
                            $"{Svg.ML.Data.SampleData.EnvironmentVariable} to that data/ folder), or the full set from Debian:");
            error.WriteLine();
            error.WriteLine($"    {QuickstartData.InstallCommand}   # then --data {Svg.ML.Data.FashionMnist.DebianDirectory}");
            error.WriteLine();
            error.WriteLine("or pass your own data with --data DIR (see --help).");
            return 2;
        }
        if (options.DataPath is null) options = options with { DataPath = fashionMnistDirectory };
        try
        {
            using var group = options.Distributed || Svg.ML.Distributed.ProcessGroup.LaunchedByMpi()
                ? Svg.ML.Distributed.ProcessGroup.Mpi() : Svg.ML.Distributed.ProcessGroup.Single;
            QuickstartPipeline.Run(options, output, group);
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException
                                      or InvalidOperationException)
        {
            error.WriteLine();
            error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
