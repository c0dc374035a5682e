using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Svg.ML.MLNet;

/// <summary>
/// Schema helpers. <see cref="SchemaShape.Column"/>'s constructor is internal to ML.NET, so estimator output columns
/// are minted through a public estimator that declares them (CustomMapping with an output schema definition), which
/// yields exactly the column shape ML.NET's own estimators produce.
/// </summary>
internal static class SchemaShapes
{
    sealed class NoInput { }
    sealed class VectorOutput { public float[] Value = Array.Empty<float>(); }
    sealed class ImageOutput { [ImageType(1, 1)] public MLImage? Value = null; }

    static readonly Dictionary<(string, string), SchemaShape.Column> Cache = new();

    /// <summary>A SchemaShape column with the given name and type (float vectors and images).</summary>
    public static SchemaShape.Column Column(string name, DataViewType type)
    {
        var key = (name, type.ToString() ?? "");
        lock (Cache)
        {
            if (Cache.TryGetValue(key, out var c)) return c;
            var ml = new MLContext();
            SchemaDefinition def;
            SchemaShape shape;
            if (type is VectorDataViewType { ItemType: NumberDataViewType } vt && vt.ItemType == NumberDataViewType.Single)
            {
                def = SchemaDefinition.Create(typeof(VectorOutput));
                def[0].ColumnName = name;
                def[0].ColumnType = vt;
                shape = ml.Transforms.CustomMapping<NoInput, VectorOutput>((_, _) => { }, null, outputSchemaDefinition: def)
                          .GetOutputSchema(new SchemaShape(Array.Empty<SchemaShape.Column>()));
            }
            else if (type is ImageDataViewType)
            {
                def = SchemaDefinition.Create(typeof(ImageOutput));
                def[0].ColumnName = name;
                def[0].ColumnType = type;
                shape = ml.Transforms.CustomMapping<NoInput, ImageOutput>((_, _) => { }, null, outputSchemaDefinition: def)
                          .GetOutputSchema(new SchemaShape(Array.Empty<SchemaShape.Column>()));
            }
            else throw new NotSupportedException($"cannot declare a column of type {type}.");
            c = shape.Single(x => x.Name == name);
            Cache[key] = c;
            return c;
        }
    }

    /// <summary>The input shape with <paramref name="added"/> appended (replacing columns of the same name).</summary>
    public static SchemaShape With(SchemaShape input, IEnumerable<(string Name, DataViewType Type)> added)
    {
        var result = input.ToDictionary(c => c.Name);
        foreach (var (name, type) in added)
        {
            result.Remove(name);
            result[name] = Column(name, type);
        }
        return new SchemaShape(result.Values);
    }

    /// <summary>Finds a column by name (the last one of that name, as ML.NET resolves names).</summary>
    public static bool TryFind(SchemaShape shape, string name, out SchemaShape.Column column)
    {
        foreach (var c in shape.Reverse())
            if (c.Name == name) { column = c; return true; }
        column = default;
        return false;
    }

    /// <summary>Text for errors: the type of a schema-shape column.</summary>
    public static string Describe(SchemaShape.Column c) =>
        c.Kind switch
        {
            SchemaShape.Column.VectorKind.Scalar => c.ItemType.ToString(),
            SchemaShape.Column.VectorKind.Vector => $"Vector<{c.ItemType}> (known size)",
            _ => $"Vector<{c.ItemType}> (variable size)",
        } + (c.IsKey ? " (key)" : "");
}
