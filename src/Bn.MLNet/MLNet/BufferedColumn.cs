using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet;

/// <summary>
/// The values of one pass-through input column for the rows of a read-ahead batch, so that a scoring cursor can read
/// a batch ahead on its one input cursor and still serve every row's input columns. Vectors are copied (a getter may
/// reuse its buffers on the next row); other values are kept as the getter gave them, as ML.NET's own cache does.
/// </summary>
internal abstract class BufferedColumn
{
    /// <summary>A buffer of <paramref name="rows"/> rows for <paramref name="column"/> of <paramref name="cursor"/>.</summary>
    public static BufferedColumn Create(DataViewRowCursor cursor, DataViewSchema.Column column, int rows)
    {
        Type raw = column.Type.RawType;
        Type type = raw.IsGenericType && raw.GetGenericTypeDefinition() == typeof(VBuffer<>)
            ? typeof(Vector<>).MakeGenericType(raw.GetGenericArguments()[0])
            : typeof(Value<>).MakeGenericType(raw);
        return (BufferedColumn)Activator.CreateInstance(type, cursor, column, rows)!;
    }

    /// <summary>Reads the cursor's current row into slot <paramref name="slot"/>.</summary>
    public abstract void Store(int slot);

    /// <summary>A getter of the slot that <paramref name="currentSlot"/> names.</summary>
    public abstract ValueGetter<TValue> Getter<TValue>(Func<int> currentSlot);

    private sealed class Value<T>(DataViewRowCursor cursor, DataViewSchema.Column column, int rows) : BufferedColumn
    {
        private readonly ValueGetter<T> _getter = cursor.GetGetter<T>(column);
        private readonly T[] _values = new T[rows];

        /// <summary>Each row starts from a default value, so a getter that reuses or releases the value it is given cannot
        /// touch an earlier row's value.</summary>
        public override void Store(int slot)
        {
            T value = default!;
            _getter(ref value);
            _values[slot] = value;
        }

        public override ValueGetter<TValue> Getter<TValue>(Func<int> currentSlot)
        {
            ScoringBinding.CheckType<T, TValue>(column);
            ValueGetter<T> g = (ref T dst) => dst = _values[currentSlot()];
            return (ValueGetter<TValue>)(object)g;
        }
    }

    private sealed class Vector<TItem>(DataViewRowCursor cursor, DataViewSchema.Column column, int rows) : BufferedColumn
    {
        private readonly ValueGetter<VBuffer<TItem>> _getter = cursor.GetGetter<VBuffer<TItem>>(column);
        private readonly VBuffer<TItem>[] _values = new VBuffer<TItem>[rows];
        private VBuffer<TItem> _scratch;

        public override void Store(int slot)
        {
            _getter(ref _scratch);
            _scratch.CopyTo(ref _values[slot]);
        }

        public override ValueGetter<TValue> Getter<TValue>(Func<int> currentSlot)
        {
            ScoringBinding.CheckType<VBuffer<TItem>, TValue>(column);
            ValueGetter<VBuffer<TItem>> g = (ref VBuffer<TItem> dst) => _values[currentSlot()].CopyTo(ref dst);
            return (ValueGetter<TValue>)(object)g;
        }
    }
}
