package analysislite;

import org.apache.lucene.analysis.TokenStream;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;

import java.util.function.UnaryOperator;

/** A token filter without settings of its own ({@code porter_stem}, {@code kstem}). */
final class SimpleTokenFilterFactory extends AbstractTokenFilterFactory {
    private final UnaryOperator<TokenStream> filter;

    /**
     * @param name the filter's name in the index settings
     * @param settings its settings, which may hold only the common ones such as {@code type}
     * @param filter wraps a token stream in the Lucene filter
     */
    SimpleTokenFilterFactory(String name, Settings settings, UnaryOperator<TokenStream> filter) {
        super(name, settings);
        this.filter = filter;
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return filter.apply(tokenStream);
    }
}
