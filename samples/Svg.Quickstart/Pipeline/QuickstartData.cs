using Svg.ML.Data;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Svg.Quickstart;

/// <summary>Training and held-out images, both at the working size.</summary>
/// <param name="Train">Training images.</param>
/// <param name="Test">Held-out images.</param>
/// <param name="Description">Where they come from and how they were prepared, for the printout.</param>
public sealed record DataSplit(LabeledImages Train, LabeledImages Test, string Description) : IDisposable
{
    /// <summary>Class names (shared by both splits).</summary>
    public IReadOnlyList<string> ClassNames => Train.ClassNames;

    /// <inheritdoc/>
    public void Dispose()
    {
        Train.Dispose();
        Test.Dispose();
    }
}

/// <summary>Loading and preparing the quickstart's images.</summary>
public static class QuickstartData
{
    /// <summary>The command that installs Fashion-MNIST on Debian.</summary>
    public const string InstallCommand = "sudo apt-get install -y dataset-fashion-mnist";

    /// <summary>True when Debian's Fashion-MNIST files are present in <paramref name="directory"/>.</summary>
    public static bool IsIdxFolder(string directory) =>
        FindIdx(directory, "train-images-idx3-ubyte") is not null && FindIdx(directory, "train-labels-idx1-ubyte") is not null &&
        FindIdx(directory, "t10k-images-idx3-ubyte") is not null && FindIdx(directory, "t10k-labels-idx1-ubyte") is not null;

    /// <summary>
    /// Loads <paramref name="trainImages"/> training and <paramref name="testImages"/> held-out images from
    /// <paramref name="dataPath"/> (null: Fashion-MNIST from <see cref="FashionMnist.DefaultDirectory"/>) and brings them
    /// to <paramref name="imageSize"/>² (<see cref="Prepare"/>). IDX folders give their first N images of each split;
    /// image folders use <c>train/</c> and <c>test/</c> subfolders when present, else a seeded 80/20 split.
    /// </summary>
    public static DataSplit Load(string? dataPath, int trainImages, int testImages, int imageSize, long seed = 0)
    {
        string dir = dataPath ?? FashionMnist.DefaultDirectory;
        LabeledImages train, test;
        string source;
        if (IsIdxFolder(dir))
        {
            bool fashion = dataPath is null || dir.Contains("fashion", StringComparison.OrdinalIgnoreCase);
            var names = fashion ? FashionMnist.ClassNames : null;
            train = IdxDataset.Load(FindIdx(dir, "train-images-idx3-ubyte")!, FindIdx(dir, "train-labels-idx1-ubyte")!, names, trainImages);
            test = IdxDataset.Load(FindIdx(dir, "t10k-images-idx3-ubyte")!, FindIdx(dir, "t10k-labels-idx1-ubyte")!, names, testImages);
            source = $"{(fashion ? "Fashion-MNIST" : "IDX data")} from {dir}";
        }
        else if (Directory.Exists(dir))
        {
            string trainDir = Path.Combine(dir, "train"), testDir = Path.Combine(dir, "test");
            if (Directory.Exists(trainDir) && Directory.Exists(testDir))
            {
                using var allTrain = ImageFolder.Load(trainDir, imageSize);
                using var allTest = ImageFolder.Load(testDir, imageSize);
                train = Shuffled(allTrain, trainImages, seed);
                test = Shuffled(allTest, testImages, seed + 1);
            }
            else
            {
                using var all = ImageFolder.Load(dir, imageSize);
                var order = Permutation(all.Count, seed);
                var testIdx = order.Where((_, i) => i % 5 == 0).Take(testImages).ToArray();
                var trainIdx = order.Where((_, i) => i % 5 != 0).Take(trainImages).ToArray();
                train = Subset(all, trainIdx, "train-split");
                test = Subset(all, testIdx, "test-split");
            }
            source = $"image folder {dir}";
        }
        else throw new DirectoryNotFoundException($"Data folder not found: {dir}");

        if (train.Count == 0 || test.Count == 0) throw new InvalidDataException($"{dir}: no training or no held-out images.");
        if (train.Count < trainImages || test.Count < testImages)
        {
            int haveTrain = train.Count, haveTest = test.Count;
            train.Dispose();
            test.Dispose();
            throw new InvalidDataException(
                $"{dir} holds {haveTrain} training / {haveTest} held-out images, fewer than the {trainImages} / {testImages} asked for: " +
                $"lower --train-images / --test-images, or use the full Fashion-MNIST (--data {FashionMnist.DebianDirectory}).");
        }
        string prep = Describe(train, imageSize);
        var preparedTrain = Prepare(train, imageSize);
        var preparedTest = Prepare(test, imageSize);
        if (!ReferenceEquals(preparedTrain, train)) train.Dispose();
        if (!ReferenceEquals(preparedTest, test)) test.Dispose();
        return new DataSplit(preparedTrain, preparedTest,
                             $"{source}: {preparedTrain.Count} training / {preparedTest.Count} held-out images, {preparedTrain.ClassNames.Count} classes, {prep}");
    }

    /// <summary>
    /// Brings images to <paramref name="size"/>²: unchanged when they have that size; zero-padded (centred) when they are
    /// at most a quarter smaller (28 → 32 keeps Fashion-MNIST's pixels exact, like LeNet's 32 px MNIST); else resized
    /// (ImageTensors.ToSquare: shorter side bicubic, centre crop, as the ML.NET featurizer does). Returns the same object when nothing changes.
    /// </summary>
    public static LabeledImages Prepare(LabeledImages images, int size)
    {
        if (images.Height == size && images.Width == size) return images;
        using var scope = NewDisposeScope();
        Tensor pixels;
        string how;
        if (CanPad(images, size))
        {
            int top = (size - images.Height) / 2, left = (size - images.Width) / 2;
            pixels = F.pad(images.Pixels, new long[] { left, size - images.Width - left, top, size - images.Height - top });
            how = $"pad={size}";
        }
        else
        {
            var f = ImageTensors.ToSquare(images.Pixels.to(ScalarType.Float32) / 255f, size, ResizeMode.CenterCrop);
            pixels = ImageTensors.ToBytes(f);
            how = $"square={size}";
        }
        return new LabeledImages(pixels.contiguous().MoveToOuterDisposeScope(), images.Labels, images.ClassNames, $"{images.Identity}|{how}");
    }

    /// <summary>Rows <paramref name="indices"/> of <paramref name="images"/> as a new set.</summary>
    public static LabeledImages Subset(LabeledImages images, long[] indices, string tag)
    {
        using var scope = NewDisposeScope();
        var pixels = images.Pixels.index_select(0, tensor(indices)).MoveToOuterDisposeScope();
        string hash = DataIdentity.Hash(string.Join(",", indices));
        return new LabeledImages(pixels, indices.Select(i => images.Labels[i]).ToArray(), images.ClassNames, $"{images.Identity}|{tag}:{hash[..16]}");
    }

    static bool CanPad(LabeledImages images, int size) =>
        images.Height <= size && images.Width <= size && (size - images.Height) * 4 <= size && (size - images.Width) * 4 <= size;

    static string Describe(LabeledImages images, int size) =>
        images.Height == size && images.Width == size ? $"{size}×{size}"
        : CanPad(images, size) ? $"{images.Width}×{images.Height} zero-padded to {size}×{size}"
        : $"{images.Width}×{images.Height} resized to {size}×{size}";

    static LabeledImages Shuffled(LabeledImages images, int count, long seed) =>
        Subset(images, Permutation(images.Count, seed).Take(count).ToArray(), $"shuffle{seed}");

    static long[] Permutation(int count, long seed)
    {
        var rng = new Random(unchecked((int)seed));
        var order = Enumerable.Range(0, count).Select(i => (long)i).ToArray();
        rng.Shuffle(order);
        return order;
    }

    static string? FindIdx(string directory, string stem)
    {
        foreach (var name in new[] { stem + ".gz", stem })
        {
            string p = Path.Combine(directory, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }
}
