using Microsoft.ML;
using Microsoft.ML.Data;

namespace Svg.ML.MLNet;

/// <summary>A column an Svg.ML transformer adds to its input.</summary>
internal sealed record OutputColumn(string Name, DataViewType Type);

/// <summary>The values computed for a batch, one buffer per output column (by output index).</summary>
internal abstract record OutputBuffer;

/// <summary>Float vectors, row after row: row <c>i</c> is <c>Data[i*Stride .. (i+1)*Stride)</c>.</summary>
internal sealed record VectorBuffer(float[] Data, int Stride) : OutputBuffer;

/// <summary>RGBA images of one size, row after row.</summary>
internal sealed record ImageBuffer(byte[] Rgba, int Width, int Height) : OutputBuffer
{
    public int Stride => Width * Height * 4;
}

/// <summary>
/// The per-cursor compute of an Svg.ML transformer: reads a row's inputs into a batch slot (<see cref="Stage"/>),
/// then computes all staged rows in one batched call (<see cref="Run"/>). One instance per cursor or row; not
/// thread-safe.
/// </summary>
internal abstract class BatchKernel : IDisposable
{
    /// <summary>The input columns the kernel reads.</summary>
    public abstract IReadOnlyList<DataViewSchema.Column> InputColumns { get; }

    /// <summary>Creates the input getters on <paramref name="row"/> (a cursor or a row; called once).</summary>
    public abstract void Bind(DataViewRow row);

    /// <summary>Rows staged since the last <see cref="Reset"/>.</summary>
    public abstract int StagedCount { get; }

    /// <summary>
    /// Reads the bound row's current inputs into the next slot; <paramref name="row"/> is the row's position in the
    /// transformer's input. Throws <see cref="BadValueException"/> (naming the column) when the value cannot be used;
    /// nothing is staged then.
    /// </summary>
    public abstract void Stage(long row);

    /// <summary>Computes the outputs for the staged rows; the active outputs are those flagged (by output index).</summary>
    public abstract OutputBuffer?[] Run(bool[] activeOutputs);

    /// <summary>Drops the staged rows.</summary>
    public abstract void Reset();

    public virtual void Dispose() { }
}
