// The MPI test host: every rank of `mpiexec.mpich -n N dotnet Svg.ML.DistributedHost.dll <scenario> <out> [args]`
// runs the scenario; each rank writes what the tests compare to <out> (rank{r}.safetensors, rank{r}.txt).
using System.Globalization;
using Svg.ML.Checkpoints;
using Svg.ML.Distributed;
using Svg.ML.DistributedHost;
using Svg.ML.Training;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: Svg.ML.DistributedHost diffusion|mlnet|autoencoder|nan|featurize|bench <out-dir> [steps|items] [batch] [checkpoint-dir|cache-dir|preset|-]");
    return 2;
}
string scenario = args[0], output = args[1];
long steps = args.Length > 2 ? long.Parse(args[2], CultureInfo.InvariantCulture) : 4;
int batch = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 4;
string? checkpoints = args.Length > 4 && args[4] != "-" ? args[4] : null;

using var group = ProcessGroup.Mpi();
Directory.CreateDirectory(output);
string report = Path.Combine(output, $"rank{group.Rank}.txt");
var log = new List<string> { group.Description };
try
{
    switch (scenario)
    {
        case "diffusion":
        {
            var options = Scenarios.Diffusion(steps, batch, checkpoints, group) with { Log = log.Add };
            using var result = DiffusionTraining.Train(Scenarios.Features(32), options);
            SafeTensors.Save(Path.Combine(output, $"rank{group.Rank}.safetensors"), Scenarios.Weights(result));
            log.Add("losses " + string.Join(" ", result.LossHistory.Select(l => l.ToString("R", CultureInfo.InvariantCulture))));
            log.Add($"resumed {result.ResumedFromStep}");
            break;
        }
        case "mlnet":   // the SvgDiffusion estimator; <checkpoint-dir> required; rank{r}.safetensors: its generator's samples
        {
            using var generator = MLNetScenario.Fit(steps, batch, checkpoints!, log.Add);
            using var samples = MLNetScenario.Samples(generator);
            SafeTensors.Save(Path.Combine(output, $"rank{group.Rank}.safetensors"), new Dictionary<string, TorchSharp.torch.Tensor> { ["samples"] = samples });
            break;
        }
        case "autoencoder":   // stage 1 on 16 Fashion-MNIST test images
        {
            using var images = Svg.ML.Data.FashionMnist.Load(train: false, limit: 16);
            var options = Scenarios.Autoencoder(steps, batch, checkpoints, group) with { Log = log.Add };
            using var result = AutoencoderTraining.Train(Scenarios.TinySvgEncoder(), images, options);
            SafeTensors.Save(Path.Combine(output, $"rank{group.Rank}.safetensors"), Scenarios.Weights(result));
            log.Add("losses " + string.Join(" ", result.LossHistory.Select(l => l.ToString("R", CultureInfo.InvariantCulture))));
            log.Add($"resumed {result.ResumedFromStep}");
            break;
        }
        case "nan":   // row 5 is NaN: with batch 4 per rank it lands on one rank only; every rank must stop
        {
            var options = Scenarios.Diffusion(steps, batch, checkpoints, group) with
            {
                Log = log.Add,
                Normalizer = Svg.ML.Diffusion.FeatureNormalizer.Identity(8),
            };
            try { using var _ = DiffusionTraining.Train(Scenarios.Features(32, nanRow: 5), options); log.Add("finished"); }
            catch (TrainingDivergedException e) { log.Add($"diverged at step {e.Step}: {e.Message}"); }
            break;
        }
        case "featurize":   // <out> <items> <chunk> <cache-dir>: ResNet18 grids of Fashion-MNIST into a shared cache
        {
            using var data = Svg.ML.Data.FashionMnist.Load(limit: (int)steps);
            using var encoder = Svg.ML.Encoders.ResNet18.FromModelDirectory();
            var entry = new Svg.ML.Data.FeatureCache(checkpoints).GetOrEncode(encoder, data, imageSize: 64, batchSize: batch, group: group);
            log.Add("entry " + entry.Path);
            break;
        }
        case "bench":   // <out> <steps> <global batch> <preset: tiny|S>: samples/s and all-reduce ms/step, stage 2
        {
            string preset = checkpoints ?? "tiny";
            var config = preset == "S"
                ? new Svg.ML.Diffusion.SvgDiTConfig(InChannels: 264, HiddenSize: 384, Depth: 12, NumHeads: 6, NumClasses: 10, GridSize: 4)
                : new Svg.ML.Diffusion.SvgDiTConfig(InChannels: 264, HiddenSize: 128, Depth: 4, NumHeads: 4, NumClasses: 10, GridSize: 4);
            var data = Scenarios.Latents(512, 264);
            var options = Scenarios.Diffusion(steps, batch / group.WorldSize, null, group) with { Model = config, Log = log.Add };
            using var result = DiffusionTraining.Train(data, options);
            log.Add($"bench preset={preset} ranks={group.WorldSize} threads={TorchSharp.torch.get_num_threads()} global_batch={batch} steps={steps} " +
                    $"seconds={result.Elapsed.TotalSeconds:F3} samples_per_s={batch * steps / result.Elapsed.TotalSeconds:F1}");
            break;
        }
        default:
            Console.Error.WriteLine($"unknown scenario '{scenario}'");
            return 2;
    }
    return 0;
}
catch (Exception e)
{
    log.Add("error " + e);
    Console.Error.WriteLine($"rank {group.Rank}: {e}");
    return 1;
}
finally
{
    File.WriteAllLines(report, log);
}
