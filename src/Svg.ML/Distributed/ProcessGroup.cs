using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Distributed;

/// <summary>
/// The processes of a data-parallel run: this process's rank, the number of ranks, its rank on this host, and the
/// collectives the training loops need (sum all-reduce, barrier). <see cref="Single"/> is the one-process group
/// (no MPI at all); <see cref="Mpi"/> is the world of an MPI launch (<c>mpiexec.mpich -n 2 dotnet app.dll</c>, or
/// <c>srun --mpi=pmi2</c> under Slurm).
/// <para>
/// MPI is loaded only here, only when <see cref="Mpi"/> is called: an application that never asks for it needs no MPI
/// installed. MPI.NET 1.4 P/Invokes MS-MPI's <c>msmpi.dll</c>; MS-MPI keeps MPICH's ABI (integer handles, the same
/// constants), so on Linux the name is mapped to MPICH's <c>libmpich.so.12</c> (Debian/Ubuntu package <c>mpich</c>;
/// override with <c>SVGML_MPI_LIBRARY</c>). OpenMPI has another ABI and is refused.
/// </para>
/// </summary>
public abstract class ProcessGroup : IDisposable
{
    /// <summary>This process's rank, 0 ≤ rank &lt; <see cref="WorldSize"/>.</summary>
    public abstract int Rank { get; }

    /// <summary>Number of processes.</summary>
    public abstract int WorldSize { get; }

    /// <summary>This process's rank among the processes on its host (selects the GPU: <c>cuda:LocalRank</c>).</summary>
    public abstract int LocalRank { get; }

    /// <summary>What the group runs on, for logs.</summary>
    public abstract string Description { get; }

    /// <summary>True on rank 0, the rank that writes checkpoints, logs and progress.</summary>
    public bool IsWriter => Rank == 0;

    /// <summary>Sums <paramref name="values"/> element-wise over all ranks, in place (every rank gets the sum).</summary>
    public abstract void AllReduceSum(Span<double> values);

    /// <summary>Sums a contiguous float32 CPU tensor element-wise over all ranks, in place.</summary>
    public abstract void AllReduceSum(Tensor hostFloat32);

    /// <summary>Waits until every rank has reached this call.</summary>
    public abstract void Barrier();

    /// <summary>Every rank's <paramref name="mine"/> (the same length on all ranks), indexed by rank.</summary>
    public abstract byte[][] AllGather(byte[] mine);

    /// <summary>Every rank's <paramref name="mine"/> (cut to <paramref name="maxBytes"/>/4 characters, so that its UTF-8
    /// fits), indexed by rank: e.g. for rank 0 to log what every rank runs on.</summary>
    public string[] AllGatherText(string mine, int maxBytes = 4096)
    {
        var buffer = new byte[maxBytes + sizeof(int)];
        int n = Encoding.UTF8.GetBytes(mine.AsSpan(0, Math.Min(mine.Length, maxBytes / 4)), buffer.AsSpan(sizeof(int)));
        BitConverter.TryWriteBytes(buffer, n);
        return AllGather(buffer).Select(b => Encoding.UTF8.GetString(b, sizeof(int), BitConverter.ToInt32(b, 0))).ToArray();
    }

    /// <summary>True on every rank when <paramref name="flag"/> is true on any rank.</summary>
    public bool Any(bool flag)
    {
        Span<double> v = [flag ? 1 : 0];
        AllReduceSum(v);
        return v[0] > 0;
    }

    /// <summary>
    /// The device of this rank: a CUDA request without an index (or <c>cuda:0</c> in a multi-rank group) becomes
    /// <c>cuda:(LocalRank mod device count)</c>; CPU stays CPU.
    /// </summary>
    public Device DeviceFor(Device requested)
    {
        if (requested.type != DeviceType.CUDA || WorldSize == 1) return requested;
        int count = Math.Max(1, (int)torch.cuda.device_count());
        return new Device(DeviceType.CUDA, LocalRank % count);
    }

    /// <summary>The one-process group: rank 0 of 1; collectives are no-ops; loads no MPI.</summary>
    public static ProcessGroup Single { get; } = new SingleProcessGroup();

    /// <summary>
    /// True when this process was started by an MPI launcher with more than one rank: <c>PMI_SIZE</c> &gt; 1, set by
    /// MPICH's Hydra (<c>mpiexec.mpich</c>) and by Slurm's <c>srun --mpi=pmi2</c> (or OpenMPI's
    /// <c>OMPI_COMM_WORLD_SIZE</c>, which <see cref="Mpi"/> then refuses with the fix).
    /// </summary>
    public static bool LaunchedByMpi()
    {
        static int Env(string name) => int.TryParse(System.Environment.GetEnvironmentVariable(name), out int v) ? v : 0;
        return Env("PMI_SIZE") > 1 || Env("OMPI_COMM_WORLD_SIZE") > 1;
    }

    /// <summary><see cref="Mpi"/> when launched by MPI with several ranks (<see cref="LaunchedByMpi"/>), else <see cref="Single"/>.</summary>
    public static ProcessGroup FromEnvironment() => LaunchedByMpi() ? Mpi() : Single;

    /// <summary>
    /// The MPI world (initialises MPI on the first call; later calls return the same group). Throws
    /// <see cref="InvalidOperationException"/> naming the fix when the MPI library cannot be loaded or is OpenMPI.
    /// Dispose it once at the end of the program (MPI_Finalize; MPI cannot be started again in the process).
    /// </summary>
    public static ProcessGroup Mpi() => MpiProcessGroup.World();

    /// <inheritdoc/>
    public virtual void Dispose() => GC.SuppressFinalize(this);

    /// <inheritdoc/>
    public override string ToString() => Description;
}

sealed class SingleProcessGroup : ProcessGroup
{
    public override int Rank => 0;
    public override int WorldSize => 1;
    public override int LocalRank => 0;
    public override string Description => "one process (no MPI)";
    public override void AllReduceSum(Span<double> values) { }
    public override void AllReduceSum(Tensor hostFloat32) { }
    public override void Barrier() { }
    public override byte[][] AllGather(byte[] mine) => [mine.ToArray()];
    public override void Dispose() { }
}

/// <summary>MPI_COMM_WORLD through MPI.NET's raw bindings (zero-copy on tensor memory).</summary>
sealed class MpiProcessGroup : ProcessGroup
{
    const string InstallHint = "install MPICH (Debian/Ubuntu: apt-get install mpich) and launch with mpiexec.mpich, " +
                               "or set SVGML_MPI_LIBRARY to the path of an MPICH-ABI libmpich.so.12";
    static readonly object Gate = new();
    static MpiProcessGroup? _world;
    static bool _resolverSet;
    static string _library = "";
    MPI.Environment? _environment;

    public override int Rank { get; }
    public override int WorldSize { get; }
    public override int LocalRank { get; }
    public override string Description { get; }

    MpiProcessGroup(MPI.Environment environment)
    {
        _environment = environment;
        Check(MPI.Unsafe.MPI_Comm_rank(MPI.Unsafe.MPI_COMM_WORLD, out int rank), "MPI_Comm_rank");
        Check(MPI.Unsafe.MPI_Comm_size(MPI.Unsafe.MPI_COMM_WORLD, out int size), "MPI_Comm_size");
        Rank = rank;
        WorldSize = size;
        LocalRank = ComputeLocalRank(out string host);
        Description = $"MPI rank {rank} of {size} (local rank {LocalRank} on {host}; {_library})";
    }

    public static MpiProcessGroup World()
    {
        lock (Gate)
        {
            if (_world is not null)
                return _world._environment is not null ? _world : throw new InvalidOperationException("MPI was finalized (the ProcessGroup was disposed); it cannot be started again in this process.");
            if (System.Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null)
                throw new InvalidOperationException("This process was launched by OpenMPI's mpirun; MPI.NET speaks the MPICH/MS-MPI ABI: " + InstallHint + ".");
            SetResolver();
            string[] args = [];
            MPI.Environment environment;
            try { environment = new MPI.Environment(ref args, MPI.Threading.Serialized); }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
            {
                throw new InvalidOperationException($"Could not load the MPI library '{_library}' ({e.Message}): {InstallHint}.", e);
            }
            return _world = new MpiProcessGroup(environment);
        }
    }

    static void SetResolver()
    {
        if (_resolverSet) return;
        _library = System.Environment.GetEnvironmentVariable("SVGML_MPI_LIBRARY") is { Length: > 0 } custom ? custom
                 : OperatingSystem.IsWindows() ? "msmpi.dll" : "libmpich.so.12";
        if (!OperatingSystem.IsWindows())
            NativeLibrary.SetDllImportResolver(typeof(MPI.Environment).Assembly, (name, _, _) =>
                name.StartsWith("msmpi", StringComparison.OrdinalIgnoreCase) ? NativeLibrary.Load(_library) : IntPtr.Zero);
        _resolverSet = true;
    }

    /// <summary>Ranks on the same host (by host name, gathered from all ranks) below this one.</summary>
    int ComputeLocalRank(out string host)
    {
        host = System.Environment.MachineName;
        var all = AllGatherText(host, 256);
        return all.Take(Rank).Count(other => other == all[Rank]);
    }

    public override byte[][] AllGather(byte[] mine)
    {
        var all = new byte[mine.Length * WorldSize];
        unsafe
        {
            fixed (byte* s = mine, r = all)
                Check(MPI.Unsafe.MPI_Allgather((IntPtr)s, mine.Length, MPI.Unsafe.MPI_BYTE, (IntPtr)r, mine.Length, MPI.Unsafe.MPI_BYTE,
                                               MPI.Unsafe.MPI_COMM_WORLD), "MPI_Allgather");
        }
        return Enumerable.Range(0, WorldSize).Select(r => all.AsSpan(r * mine.Length, mine.Length).ToArray()).ToArray();
    }

    public override void AllReduceSum(Span<double> values)
    {
        unsafe
        {
            fixed (double* p = values)
                Check(MPI.Unsafe.MPI_Allreduce(InPlace, (IntPtr)p, values.Length, MPI.Unsafe.MPI_DOUBLE, MPI.Unsafe.MPI_SUM,
                                               MPI.Unsafe.MPI_COMM_WORLD), "MPI_Allreduce");
        }
    }

    public override void AllReduceSum(Tensor hostFloat32)
    {
        if (hostFloat32.device_type != DeviceType.CPU || hostFloat32.dtype != ScalarType.Float32 || !hostFloat32.is_contiguous())
            throw new ArgumentException("MPI all-reduce needs a contiguous float32 CPU tensor (stage GPU tensors through host memory).");
        if (hostFloat32.numel() > int.MaxValue / sizeof(float)) throw new ArgumentException("All-reduce buffers are limited to 2 GiB; use buckets.");
        unsafe
        {
            fixed (byte* p = hostFloat32.bytes)   // the tensor's own memory (CPU, contiguous)
                Check(MPI.Unsafe.MPI_Allreduce(InPlace, (IntPtr)p, (int)hostFloat32.numel(), MPI.Unsafe.MPI_FLOAT,
                                               MPI.Unsafe.MPI_SUM, MPI.Unsafe.MPI_COMM_WORLD), "MPI_Allreduce");
        }
    }

    public override void Barrier() => Check(MPI.Unsafe.MPI_Barrier(MPI.Unsafe.MPI_COMM_WORLD), "MPI_Barrier");

    /// <summary>MPI_IN_PLACE: <c>(void*)-1</c> in MPICH and MS-MPI alike.</summary>
    static readonly IntPtr InPlace = new(-1);

    static void Check(int code, string call)
    {
        if (code != MPI.Unsafe.MPI_SUCCESS) throw new InvalidOperationException($"{call} failed with MPI error code {code}.");
    }

    public override void Dispose()
    {
        lock (Gate)
        {
            _environment?.Dispose();   // MPI_Finalize
            _environment = null;
        }
        base.Dispose();
    }
}
